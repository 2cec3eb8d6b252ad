"""The built-in EfficientNet-Lite0 quantized once per engine for the whole test session
(tests/test_quantize.py verifies the runs, tests/test_quantized_runs.py runs their models;
conftest.py's ``lite0``, ``views`` and ``quantized`` fixtures), calibrated on views of the
scikit-image photos that show things ImageNet has classes for (tests/test_quantize.py says why
these)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

PHOTOS = ("chelsea", "coffee", "camera", "rocket", "clock", "stereo_motorcycle")
SAMPLES = "16"  # calibration images: few, to keep each engine's quantize under a minute


def tool_problem(engine: str) -> str | None:
    """Why ``engine``'s quantization tool cannot run here (the skip reason), or None."""
    from ppinfer.engines.onnxruntime import converter_problem
    from ppinfer.runtime.paddle_env import package_version, paddle_env

    needs = {"analysis": (), "openvino": ("nncf", "openvino"),
             "onnxruntime": ("onnxruntime", "onnx", "paddle2onnx")}[engine]
    for module in needs:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'ppinfer[quantize,onnx]')"
    if engine == "onnxruntime":
        return converter_problem(package_version("paddle2onnx"), paddle_env().version, "legacy")
    return None


def write_views(root: Path) -> Path:
    """72 JPEGs in ``root``: each photo whole, and crops of 70% of it at its corners and
    centre, each also mirrored (22 held out to verify)."""
    import cv2
    from skimage import data

    for name in PHOTOS:
        image = getattr(data, name)()
        if isinstance(image, tuple):  # the stereo pair (left, right, disparity): its left view
            image = image[0]
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        h, w = image.shape[:2]
        for scale in (1.0, 0.7):
            ch, cw = int(h * scale), int(w * scale)
            corners = [(0, 0)] if scale == 1.0 else [
                (0, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2), (0, w - cw), (h - ch, 0)]
            for y, x in corners:
                crop = image[y:y + ch, x:x + cw]
                for flip in (False, True):
                    view = np.ascontiguousarray(crop[:, ::-1] if flip else crop)
                    cv2.imwrite(str(root / f"{name}-{scale}-{y}-{x}-{int(flip)}.jpg"),
                                cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
    return root


class Quantized:
    """``ppinfer quantize`` run once per engine: ``self(engine)`` is (the CliRunner result,
    the output directory); skips where the engine's tool is not installed."""

    def __init__(self, lite0: Path, views: Path, root: Path) -> None:
        self.lite0, self.views, self.root = lite0, views, root
        self._runs: dict = {}

    def __call__(self, engine: str):
        import pytest
        from click.testing import CliRunner

        from ppinfer.cli import cli

        problem = tool_problem(engine)
        if problem:
            pytest.skip(problem)
        if engine not in self._runs:
            out = self.root / f"lite0-int8-{engine}"
            self._runs[engine] = (CliRunner().invoke(cli, [
                "quantize", "--model", str(self.lite0), "--calib", str(self.views),
                "-o", str(out), "--samples", SAMPLES, "--engine", engine]), out)
        return self._runs[engine]
