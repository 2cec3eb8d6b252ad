"""The one place ppinfer imports OpenCV, whichever distribution provides it.

ppinfer depends on no particular OpenCV distribution: opencv-python, opencv-python-headless,
opencv-contrib-python and opencv-contrib-python-headless all install the same ``cv2`` module, and
pip installs two of them side by side (each overwriting the other's files) if asked for both.
So the package brings headless OpenCV only through its ``opencv`` extra, and an environment that
already has another flavour (PaddleX pins opencv-contrib-python==4.10.0.84) keeps it. What pip
cannot check then is checked here: that a ``cv2`` is importable, and not older than ppinfer
supports.
"""

from __future__ import annotations

import re
from importlib import metadata

from ppinfer.errors import OpenCVError

OPENCV_MIN_VERSION = (4, 5, 5)  # the oldest with wheels for current Pythons (pyproject's floor)
OPENCV_DISTRIBUTIONS = (
    "opencv-python-headless",
    "opencv-python",
    "opencv-contrib-python-headless",
    "opencv-contrib-python",
)
OPENCV_INSTALL_HINT = (
    "pip install 'ppinfer[opencv]' (opencv-python-headless), or any one of "
    f"{', '.join(OPENCV_DISTRIBUTIONS[1:])} >= {'.'.join(map(str, OPENCV_MIN_VERSION))}"
)


def import_cv2():
    """Import and return ``cv2``, or raise :class:`OpenCVError` with what to install."""
    try:
        import cv2
    except ImportError as exc:
        raise OpenCVError(_import_failure(exc)) from exc
    check_opencv_version(cv2.__version__)
    return cv2


def _import_failure(exc: ImportError) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, ModuleNotFoundError) and exc.name == "cv2":
        return f"ppinfer needs OpenCV to read images, and none is installed: {OPENCV_INSTALL_HINT}."
    if "numpy" in reason.lower():
        import numpy

        return (
            f"The installed OpenCV cannot run with NumPy {numpy.__version__} ({reason}): "
            "OpenCV releases before 4.10 were built for NumPy 1.x; upgrade OpenCV "
            "(e.g. pip install -U opencv-python-headless) or install 'numpy<2'."
        )
    return (
        f"OpenCV is installed but cannot be imported ({reason}): reinstall it "
        f"({OPENCV_INSTALL_HINT})."
    )


def check_opencv_version(version: str) -> None:
    """Raise :class:`OpenCVError` if ``version`` (``cv2.__version__``) is below the floor."""
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:3])
    if numbers < OPENCV_MIN_VERSION:
        floor = ".".join(map(str, OPENCV_MIN_VERSION))
        raise OpenCVError(
            f"OpenCV {version} is older than {floor}, the oldest ppinfer supports: "
            f"upgrade it ({OPENCV_INSTALL_HINT})."
        )


def installed_opencv_distributions() -> dict[str, str]:
    """The OpenCV pip distributions installed here, name -> version. More than one means their
    ``cv2`` files overwrote each other: the ``cv2`` imported is the last one installed."""
    found = {}
    for name in OPENCV_DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def describe_opencv() -> str:
    """One line for ``ppinfer info``: the cv2 version and which distribution(s) provide it."""
    dists = installed_opencv_distributions()
    try:
        version = import_cv2().__version__
    except OpenCVError:
        version = "not usable"
    line = f"{version} ({', '.join(f'{n} {v}' for n, v in dists.items()) or 'no pip package'})"
    if len(dists) > 1:
        line += ": these overwrite one another's cv2, keep one (pip uninstall the others)"
    return line
