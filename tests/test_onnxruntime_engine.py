"""The onnxruntime engine: registered always, one-sentence errors without the extra or with a
paddle2onnx that cannot read the model, and with the extra the same predictions as Paddle."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.config import RunConfig
from ppinfer.engines import get_engine, list_engines
from ppinfer.engines.onnxruntime import INSTALL_HINT, converter_problem
from ppinfer.errors import ConfigError
from ppinfer.runtime.paddle_env import paddle_env

from .test_bench import export_tiny, tiny_checkpoint  # noqa: F401  (a fixture)


def _extra_problem() -> str | None:
    """Why the onnx extra cannot run here (skip reason), or None."""
    for module in ("onnxruntime", "paddle2onnx"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'ppinfer[onnx]')"
    problem = converter_problem(importlib.metadata.version("paddle2onnx"), paddle_env().version,
                                paddle_env().native_format)
    return problem


needs_extra = pytest.mark.skipif(_extra_problem() is not None, reason=str(_extra_problem()))


def test_registered_without_importing_onnxruntime() -> None:
    assert "onnxruntime" in list_engines()
    assert get_engine("onnxruntime").precisions == frozenset({"fp32", "int8"})


def test_missing_extra_is_one_sentence(monkeypatch, tmp_path) -> None:
    from ppinfer.modelfiles.source import ModelSource

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    engine = get_engine("onnxruntime")(ModelSource(), RunConfig(device="cpu"))
    with pytest.raises(ConfigError) as info:
        engine.build()
    assert str(info.value) == INSTALL_HINT
    assert "pip install 'ppinfer[onnx]'" in INSTALL_HINT


def test_converter_problems_name_the_fix() -> None:
    assert converter_problem(None, "3.3.1", "pir") == INSTALL_HINT
    assert converter_problem("2.1.0", "3.3.1", "pir") is None
    assert converter_problem("2.1.0", "3.3.1", "legacy") is None
    on_26 = converter_problem("2.1.0", "2.6.2", "legacy")
    assert on_26 == ("paddle2onnx 2.1.0 needs Paddle 3 and Paddle 2.6.2 is installed: run pip "
                     "install 'paddle2onnx<2' (1.3 converts .pdmodel programs).")
    assert converter_problem("1.3.1", "2.6.2", "legacy") is None
    old = converter_problem("1.3.1", "3.3.1", "pir")
    assert ".pdmodel programs only" in old and "--format legacy" in old


@pytest.fixture(scope="module")
def onnx_home(tmp_path_factory, monkeypatch_module):
    home = tmp_path_factory.mktemp("ppinfer-home")
    monkeypatch_module.setenv("PPINFER_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _predict(model, image, engine):
    result = CliRunner().invoke(cli, ["predict", "-i", str(image), "--model", str(model),
                                      "--engine", engine, "--json"])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.output.splitlines() if x.startswith("{")]
    return line


@needs_extra
@pytest.mark.parametrize("fmt", ["native", "legacy", "seed"])
def test_predictions_match_paddle_and_the_onnx_is_cached_outside_the_model(
    fmt, tiny_checkpoint, photos, onnx_home, tmp_path  # noqa: F811
) -> None:
    if fmt == "legacy" and paddle_env().native_format == "legacy":
        pytest.skip("legacy is the native format here")
    model = export_tiny(tiny_checkpoint, tmp_path / "model", None if fmt == "native" else fmt)
    before = sorted(p.name for p in model.iterdir())
    ours = _predict(model, photos["chelsea"], "onnxruntime")
    paddle = _predict(model, photos["chelsea"], "analysis")
    assert ours["class_ids"] == paddle["class_ids"]
    np.testing.assert_allclose(ours["scores"], paddle["scores"], atol=1e-5)
    assert sorted(p.name for p in model.iterdir()) == before
    from ppinfer.engines.onnxruntime import model_digest
    from ppinfer.modelfiles.formats import RUN_PREFERENCE, detect_directory

    converter = f"paddle2onnx={importlib.metadata.version('paddle2onnx')}"
    digest = model_digest(detect_directory(model, prefer=RUN_PREFERENCE), converter)
    cached = onnx_home / "onnx" / digest[:32] / "model.onnx"  # keyed by content, not by path
    record = json.loads((cached.parent / "conversion.json").read_text())
    assert record["max_abs_diff_vs_paddle"] < 1e-4
    stamp = cached.stat().st_mtime_ns
    _predict(model, photos["coffee"], "onnxruntime")
    assert cached.stat().st_mtime_ns == stamp  # reused, not converted again


@needs_extra
def test_bf16_is_refused_in_one_sentence(tiny_checkpoint, onnx_home, tmp_path) -> None:  # noqa: F811
    from ppinfer.modelfiles.source import resolve_source

    model = export_tiny(tiny_checkpoint, tmp_path / "model")
    engine = get_engine("onnxruntime")(resolve_source(model=str(model)),
                                       RunConfig(device="cpu", precision="bf16", mkldnn=True)
                                       if paddle_env().has_avx512_bf16
                                       else RunConfig(device="cpu"))
    if engine.config.precision == "fp32":
        pytest.skip("this CPU cannot resolve bf16")
    with pytest.raises(ConfigError, match=r"runs fp32, int8 only, not bf16: use --engine analysis"):
        engine.ensure_built()


@needs_extra
def test_bench_puts_onnxruntime_beside_analysis_with_ratios(tiny_checkpoint, onnx_home,  # noqa: F811
                                                            tmp_path) -> None:
    model = export_tiny(tiny_checkpoint, tmp_path / "model")
    out = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["bench", "--model", str(model), "--engine",
                                      "analysis,onnxruntime", "--iterations", "2", "--warmup", "0",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["settings"]["baseline"] == {"engine": "onnxruntime", "precision": "fp32"}
    ratios = {r["engine"]: r["ratio_to_baseline"] for r in doc["results"]}
    assert ratios["onnxruntime"] == pytest.approx(1.0) and ratios["analysis"] > 0
    assert doc["environment"]["packages"]["onnxruntime"]


def test_the_conversion_check_runs_a_photo_preprocessed_as_the_card_says():
    """Random noise saturated PP-LCNetV2's scores, where a good conversion differed by 3e-4."""
    from ppinfer.api.builtin_model import default_model_dir
    from ppinfer.engines.onnxruntime import _sample_batch
    from ppinfer.modelfiles.source import resolve_source
    from ppinfer.pipeline.decode import load_image
    from ppinfer.pipeline.preprocess import preprocess_image
    from ppinfer.pipeline.sample import sample_image_path

    source = resolve_source(model=str(default_model_dir()), prefer="legacy")
    batch = _sample_batch(source.layout, [1, 3, 224, 224])
    photo = preprocess_image(load_image(sample_image_path()), source.preprocess)
    assert batch.shape == (2, 3, 224, 224)
    np.testing.assert_array_equal(batch[0], photo)
    np.testing.assert_array_equal(batch[1], photo[:, :, ::-1])
