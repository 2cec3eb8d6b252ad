"""ppinfer runs on whichever OpenCV distribution provides ``cv2``, and says what to install when
none does (or it is too old, or built for another NumPy)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.errors import OpenCVError
from ppinfer.pipeline.opencv import (
    OPENCV_MIN_VERSION,
    check_opencv_version,
    import_cv2,
    installed_opencv_distributions,
)

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py


def test_the_installed_opencv_meets_the_floor_and_is_the_one_imported():
    assert import_cv2() is cv2
    numbers = tuple(int(p) for p in cv2.__version__.split(".")[:3])
    assert numbers >= OPENCV_MIN_VERSION
    dists = installed_opencv_distributions()
    assert dists, "cv2 imports but no OpenCV pip distribution is installed"
    assert any(v.startswith(cv2.__version__) for v in dists.values()), (cv2.__version__, dists)


@pytest.mark.parametrize("version", ["4.5.5", "4.10.0", "4.12.0", "5.0.0", "4.13.0-dev"])
def test_supported_versions_pass(version):
    check_opencv_version(version)


@pytest.mark.parametrize("version", ["4.5.4", "4.4.0", "3.4.18"])
def test_older_opencv_is_refused_naming_the_floor(version):
    with pytest.raises(OpenCVError, match=r"older than 4\.5\.5.*ppinfer\[opencv\]"):
        check_opencv_version(version)


def test_missing_opencv_is_a_sentence_naming_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # what Python does when cv2 is not installed
    with pytest.raises(OpenCVError, match=r"none is installed: pip install 'ppinfer\[opencv\]'"):
        import_cv2()


def test_predict_without_opencv_exits_2_with_one_line(tmp_path):
    # A fresh interpreter in which `import cv2` fails as it does when no OpenCV is installed.
    code = ("import sys; sys.modules['cv2'] = None; from ppinfer.cli import main; "
            "sys.argv = ['ppinfer', 'predict', '-i', 'x.jpg']; main()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs OpenCV" in lines[0] and "ppinfer[opencv]" in lines[0]


def test_info_names_the_opencv_distribution():
    result = CliRunner().invoke(cli, ["info", "--json"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output)["opencv"]
    assert line.startswith(cv2.__version__)
    assert any(name in line for name in installed_opencv_distributions())
