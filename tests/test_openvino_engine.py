"""The openvino engine: registered always, one sentence without the extra, and with it the
same predictions as Paddle Inference on legacy, seed and PIR (through ONNX) programs."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.config import RunConfig
from ppinfer.engines import get_engine, list_engines
from ppinfer.engines.openvino import INSTALL_HINT, compile_properties
from ppinfer.errors import ConfigError
from ppinfer.runtime.paddle_env import paddle_env

from .test_bench import export_tiny, tiny_checkpoint  # noqa: F401  (a fixture)
from .test_onnxruntime_engine import _extra_problem, monkeypatch_module, onnx_home  # noqa: F401

TOLERANCE = 1e-4
needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                    reason="openvino is not installed (pip install "
                                           "'ppinfer[openvino]')")


def test_registered_without_importing_openvino() -> None:
    assert "openvino" in list_engines()
    assert get_engine("openvino").precisions == frozenset({"fp32", "bf16", "int8"})


def test_missing_extra_is_one_sentence(monkeypatch) -> None:
    from ppinfer.modelfiles.source import ModelSource

    monkeypatch.setitem(sys.modules, "openvino", None)
    engine = get_engine("openvino")(ModelSource(), RunConfig(device="cpu"))
    with pytest.raises(ConfigError) as info:
        engine.build()
    assert str(info.value) == INSTALL_HINT


def test_compile_properties_carry_threads_and_the_precision_hint() -> None:
    config = RunConfig(device="cpu", cpu_threads=1).resolve()
    assert compile_properties(config) == {"INFERENCE_PRECISION_HINT": "f32",
                                          "INFERENCE_NUM_THREADS": 1,
                                          "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}


def _scores(model, images, engine, batch=2):
    result = CliRunner().invoke(cli, ["predict", *sum((["-i", str(i)] for i in images), []),
                                      "--model", str(model), "--engine", engine, "-b", str(batch),
                                      "--cpu-threads", "1", "--top-k", "3", "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(x) for x in result.output.splitlines() if x.startswith("{")]


FORMATS = ["legacy", "seed"] + (["pir"] if paddle_env().can_run_pir else [])


@needs_openvino
@pytest.mark.parametrize("fmt", FORMATS)
def test_openvino_agrees_with_analysis_on_real_photos(
    fmt, tiny_checkpoint, photos, onnx_home, tmp_path  # noqa: F811
) -> None:
    if fmt == "pir" and _extra_problem():
        pytest.skip(f"a PIR program goes through ONNX: {_extra_problem()}")
    model = export_tiny(tiny_checkpoint, tmp_path / "model", fmt)
    if fmt == "pir":  # the PIR program itself (the legacy one beside it is read directly)
        model = model / "inference.json"
    images = [photos["chelsea"], photos["coffee"], photos["astronaut"]]
    ours = _scores(model, images, "openvino")
    paddle = _scores(model, images, "analysis")
    assert [r["class_ids"] for r in ours] == [r["class_ids"] for r in paddle]
    np.testing.assert_allclose([r["scores"] for r in ours], [r["scores"] for r in paddle],
                               atol=TOLERANCE)
    onnx_dir = onnx_home / "onnx"
    converted = list(onnx_dir.glob("*/model.onnx")) if onnx_dir.exists() else []
    if fmt == "pir":  # the onnxruntime engine's cached conversion, reused
        assert converted
    else:
        assert not any(str(model) in (p.parent / "conversion.json").read_text()
                       for p in converted)


@needs_openvino
def test_engine_all_includes_openvino_within_the_tolerance(tiny_checkpoint, photos,  # noqa: F811
                                                           tmp_path) -> None:
    model = export_tiny(tiny_checkpoint, tmp_path / "model", "legacy")
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--model",
                                      str(model), "--engine", "all", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["engine"]: r for r in map(json.loads, result.output.splitlines())
            if "engine" in r}
    assert rows["openvino"]["max_abs_diff"] <= TOLERANCE
    assert rows["openvino"]["top1"] == rows["analysis"]["top1"]


@needs_openvino
def test_bf16_without_cpu_support_is_refused_not_faked(tiny_checkpoint, tmp_path) -> None:  # noqa: F811
    import openvino

    from ppinfer.modelfiles.source import resolve_source

    if "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU runs bf16 in OpenVINO")
    model = export_tiny(tiny_checkpoint, tmp_path / "model", "legacy")
    config = RunConfig(device="cpu", precision="bf16", bf16_emulation=True)
    if "avx512bw" not in paddle_env().cpu_flags:
        pytest.skip("bf16 does not resolve on this CPU")
    engine = get_engine("openvino")(resolve_source(model=str(model), prefer="legacy"), config)
    with pytest.raises(ConfigError, match="OpenVINO runs bf16 only on CPUs with avx512_bf16"):
        engine.ensure_built()


def _unconvertible_onnx(path):
    """An ONNX model with an operator OpenVINO has no conversion rule for."""
    onnx = pytest.importorskip("onnx", reason="the onnx package (with paddle2onnx 2.x)")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("SequenceMapLike", ["a"], ["y"], domain="ppinfer.test")]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[
        helper.make_opsetid("", 13), helper.make_opsetid("ppinfer.test", 1)])
    onnx.save(model, str(path))
    return path


@needs_openvino
def test_a_model_openvino_cannot_convert_names_the_operators_and_is_skipped_alike(
        tiny_checkpoint, photos, tmp_path, monkeypatch) -> None:  # noqa: F811
    """The reason is OpenVINO's (the operators), not the C++ file that threw; `predict
    --engine all` and `bench` both skip the engine with it and exit 0."""
    from ppinfer.engines.openvino import OpenVinoEngine

    model = export_tiny(tiny_checkpoint, tmp_path / "model", "legacy")
    bad = _unconvertible_onnx(tmp_path / "bad.onnx")
    monkeypatch.setattr(OpenVinoEngine, "model_file", lambda self: bad)
    reason = "No conversion rule found for operations: ppinfer.test.SequenceMapLike"
    parity = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--model",
                                      str(model), "--engine", "all", "--json"])
    assert parity.exit_code == 0, parity.output
    rows = {r["engine"]: r for r in map(json.loads, parity.stdout.splitlines()) if "engine" in r}
    assert reason in rows["openvino"]["skipped"]
    assert "core.cpp" not in rows["openvino"]["skipped"]
    bench = CliRunner().invoke(cli, ["bench", "--model", str(model), "--engine",
                                     "analysis,openvino", "--iterations", "2", "--warmup", "0"])
    assert bench.exit_code == 0, bench.output
    (line,) = [n for n in bench.stdout.splitlines() if n.startswith("skipped:")]
    assert "openvino" in line and reason in line
