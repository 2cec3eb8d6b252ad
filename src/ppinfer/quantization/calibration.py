"""Calibration images: found as ``predict`` finds inputs, split into the images that calibrate
and the images held out to verify, and preprocessed exactly as ``predict`` preprocesses them
(:func:`ppinfer.pipeline.preprocess.load_and_preprocess`, the model's own ``inference.yml``).

The split is fixed by the images' file names, not their order on disk: the paths are ordered
by a hash of each name, so a folder sorted by class does not put one class in the held-out
share, and quantizing the same folder twice (or a copy of it) calibrates on the same images.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ppinfer.errors import ConfigError, ImageError
from ppinfer.pipeline.inputs import expand_inputs
from ppinfer.pipeline.preprocess import load_and_preprocess
from ppinfer.pipeline.preprocess_config import PreprocessConfig

DEFAULT_SAMPLES = 64
# held out to verify: with 100 images, 30, so that one disagreement alone stays above 97%
HELD_OUT_SHARE = 0.3
MIN_HELD_OUT = 4  # fewer make the agreement figure a coin toss
MIN_CALIBRATION = 4  # fewer give activation ranges of a handful of pixels' worth


@dataclass
class CalibrationSet:
    """The images that calibrate and those held out, preprocessed; what was left out and why."""

    calibration: list[str]
    held_out: list[str]
    unused: int = 0  # readable images beyond --samples, used for neither
    unreadable: list[str] = field(default_factory=list)  # one sentence per image left out
    calibration_batch: np.ndarray | None = None
    held_out_batch: np.ndarray | None = None

    def digest(self) -> str:
        """SHA-256 over the calibration images' bytes (in calibration order): which images
        calibrated this model, whatever their paths."""
        total = hashlib.sha256()
        for path in self.calibration:
            with open(path, "rb") as fh:
                total.update(hashlib.sha256(fh.read()).digest())
        return total.hexdigest()

    def describe(self) -> str:
        """One sentence: how many images calibrated, how many were held out, what was left."""
        parts = [f"{len(self.calibration)} calibration images, {len(self.held_out)} held out "
                 "to verify"]
        if self.unused:
            parts.append(f"{self.unused} more not used (--samples)")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable left out")
        return "; ".join(parts)


def _spread(paths: Sequence[str]) -> list[str]:
    """The paths in an order fixed by their file names (the same wherever the folder is) and
    unrelated to their folders' order."""
    return sorted(paths, key=lambda p: (
        hashlib.sha256(os.fsencode(os.path.basename(p))).hexdigest(), p))


def split_images(specs: Sequence[str | os.PathLike[str]], samples: int = DEFAULT_SAMPLES,
                 held_out_share: float = HELD_OUT_SHARE) -> CalibrationSet:
    """Expand ``specs`` (files, folders, globs) and split them; no image is read yet."""
    if samples < MIN_CALIBRATION:
        raise ConfigError(f"--samples {samples} is too few: calibrate on at least "
                          f"{MIN_CALIBRATION} images (a few hundred of the model's own domain "
                          "is best).")
    if not 0 < held_out_share < 1:
        raise ConfigError(f"The held-out share {held_out_share:g} is not between 0 and 1.")
    items = expand_inputs(specs)
    for item in items:
        if item.error is not None:  # a folder or glob the user named that holds nothing
            raise ConfigError(f"{item.error} (--calib)")
    paths = _spread(item.path for item in items)
    held = max(MIN_HELD_OUT, round(len(paths) * held_out_share))
    if len(paths) < held + MIN_CALIBRATION:
        raise ConfigError(
            f"Quantizing needs at least {MIN_HELD_OUT + MIN_CALIBRATION} images ("
            f"{MIN_CALIBRATION} to calibrate, {MIN_HELD_OUT} held out to verify), and --calib "
            f"found {len(paths)}: pass a folder of images like those the model will see.")
    rest = paths[held:]
    return CalibrationSet(calibration=rest[:samples], held_out=paths[:held],
                          unused=max(0, len(rest) - samples))


def load(calibration: CalibrationSet, preprocess: PreprocessConfig) -> CalibrationSet:
    """Decode and preprocess both shares; an unreadable image is left out and counted."""
    calibration.calibration, calibration.calibration_batch = _batch(
        calibration.calibration, preprocess, calibration.unreadable)
    calibration.held_out, calibration.held_out_batch = _batch(
        calibration.held_out, preprocess, calibration.unreadable)
    if len(calibration.calibration) < MIN_CALIBRATION or len(calibration.held_out) < 1:
        shown = calibration.unreadable[0] if calibration.unreadable else ""
        raise ConfigError(f"Too few of the --calib images could be read to quantize ({shown}).")
    return calibration


def _batch(paths: list[str], preprocess: PreprocessConfig,
           unreadable: list[str]) -> tuple[list[str], np.ndarray | None]:
    kept, tensors = [], []
    for path in paths:
        try:
            tensors.append(load_and_preprocess(path, preprocess))
        except ImageError as exc:
            unreadable.append(str(exc))
            continue
        kept.append(path)
    if not tensors:
        return kept, None
    return kept, np.ascontiguousarray(np.stack(tensors), dtype=np.float32)


def batches(array: np.ndarray, size: int) -> list[np.ndarray]:
    """``array`` cut into batches of ``size`` along the first axis (the last may be smaller)."""
    return [array[i : i + size] for i in range(0, len(array), size)]
