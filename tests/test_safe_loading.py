"""Checkpoints are data, never code, through the command line too (issue 7, part 4).

tests/test_torch_reader.py proves the restricted unpickler refuses code in a pickle and in a
torch zip file. Here the same payloads arrive the way a user would meet them: a ``.pdparams``
(or ``.pth``) handed to ``ppinfer export -p`` or to ``ppinfer predict --engine
executor-persistable -p``. Each must exit 2 with one sentence, and the payload must not run; a
control shows that the payload is live when unpickled the ordinary way.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ppinfer.cli import cli

from .test_torch_reader import _Eval, _Shell, _write_zip

PAYLOADS = [(_Shell, "posix.system"), (_Eval, "builtins.eval")]


def evil_state(payload, marker: Path) -> dict:
    """A plausible state dict with one poisoned entry among real arrays."""
    return {"fc_weights": np.zeros((8, 4), np.float32), "fc_offset": payload(marker),
            "conv1_weights": np.ones((8, 3, 3, 3), np.float32)}


def assert_refused(result, path: Path, global_name: str) -> None:
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {path} names the global {global_name}, which is not on ppinfer's allow-list, "
        "so the file is refused and nothing in it was run.\n")


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize(("payload", "global_name"), PAYLOADS, ids=["os.system", "eval"])
def test_export_refuses_a_pdparams_that_carries_code(tmp_path, payload, global_name, protocol):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(evil_state(payload, control), protocol=protocol))
    assert control.exists(), "the payload is not live, so this test would prove nothing"

    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pdparams"
    evil.write_bytes(pickle.dumps(evil_state(payload, marker), protocol=protocol))
    result = CliRunner().invoke(cli, ["export", "-m", "MobileNetV3_small_x0_35", "-p", str(evil),
                                      "-o", str(tmp_path / "out"), "--class-num", "4"])
    assert_refused(result, evil, global_name)
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_predict_refuses_a_pdparams_that_carries_code(tmp_path):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pdparams"
    evil.write_bytes(pickle.dumps(evil_state(_Shell, marker), protocol=2))
    result = CliRunner().invoke(cli, ["predict", "-i", "x.jpg", "--engine",
                                      "executor-persistable", "--model-name",
                                      "MobileNetV3_small_x0_35", "--class-num", "4",
                                      "-p", str(evil)])
    assert_refused(result, evil, "posix.system")
    assert not marker.exists()


def test_export_refuses_a_torch_file_that_carries_code(tmp_path):
    marker = tmp_path / "marker"
    blob = pickle.dumps(evil_state(_Shell, marker), protocol=2)
    evil = _write_zip(tmp_path / "evil.pth", blob[2:-1], {})  # protocol header, STOP re-added
    result = CliRunner().invoke(cli, ["export", "-m", "EfficientNet_lite0", "-p", str(evil),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "names the global posix.system, which is not on ppinfer's allow-list" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not marker.exists()
