"""ppinfer's own exceptions.

The library raises these; only ``cli.py`` turns them into a one-sentence message and an exit
status. Each message says what is wrong and what to do about it.
"""

from __future__ import annotations


class PPInferError(Exception):
    """Base of every error a user can cause. ``exit_code`` is the command line's exit status
    (docs/predict.md, "Output and exit status")."""

    exit_code = 2


class PaddleMissingError(PPInferError):
    """Paddle is not installed (or cannot be imported)."""


class ConfigError(PPInferError):
    """A run option is invalid, or the installed Paddle / hardware cannot do what was asked."""


class UnknownNameError(ConfigError):
    """A registry lookup (model, engine) failed; the message lists the valid names."""


class ModelFormatError(PPInferError):
    """A path does not hold a model layout ppinfer can load."""


class CheckpointError(PPInferError):
    """A checkpoint cannot be read, or does not fit the architecture."""


class UnsafePickleError(CheckpointError):
    """A pickle names a global outside the allow-list; nothing in it was executed."""


class ImageError(PPInferError):
    """One input image cannot be read or decoded. Per-image: other images still run."""

    exit_code = 1


class OutputError(PPInferError):
    """Results cannot be written: the --save file's folder is missing or read-only, the disk
    is full, ..."""


class RunnerError(PPInferError):
    """A distributed run (``--runner ray``) failed as a whole: workers kept dying, the cluster
    went away, ..."""


class ExportError(PPInferError):
    """Export cannot write its output (exists without --force, unwritable, ...)."""


class OpenCVError(PPInferError):
    """OpenCV (any of its pip distributions) is missing, too old, or cannot be imported."""


class PrecisionWarning(UserWarning):
    """A run asked for a precision its model was not made for (fp32 on an int8 model): it
    runs as asked, and costs what the message says."""
