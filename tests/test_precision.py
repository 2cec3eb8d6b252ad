"""Scores are right in every precision: a model's output kind comes from its program, bf16
agrees with fp32 on real photos, and Paddle's own log lines stay off ppinfer's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ppinfer.config import RunConfig
from ppinfer.modelfiles.program_output import output_kind
from ppinfer.runtime.paddle_env import paddle_env

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")
BF16_SCORE_TOLERANCE = 0.05


def _can_bf16() -> bool:
    env = paddle_env()
    return env.with_onednn and (env.has_avx512_bf16 or "avx512bw" in env.cpu_flags)


needs_bf16 = pytest.mark.skipif(not _can_bf16(), reason="needs oneDNN and an AVX-512 CPU")


@pytest.fixture(scope="module")
def real_photos(tmp_path_factory) -> list[Path]:
    from skimage import data

    root = tmp_path_factory.mktemp("bf16-photos")
    paths = []
    for name in PHOTOS:
        path = root / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def builtin_model() -> Path:
    from ppinfer.api.builtin_model import default_model_dir

    return default_model_dir()


def _save_linear(directory: Path, with_softmax: bool, ir: str) -> Path:
    """A one-layer classifier saved by Paddle itself, ending in softmax or in logits."""
    from ppinfer.runtime.paddle_env import ir_guard, static_mode
    from ppinfer.runtime.paddle_import import import_paddle

    paddle = import_paddle()
    with static_mode(), ir_guard(ir):
        main, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(main, startup):
            x = paddle.static.data("x", [None, 8], "float32")
            out = paddle.nn.Linear(8, 4)(x)
            if with_softmax:
                out = paddle.nn.functional.softmax(out)
        exe = paddle.static.Executor(paddle.CPUPlace())
        exe.run(startup)
        paddle.static.save_inference_model(str(directory / "inference"), [x], [out], exe,
                                           program=main)
    suffix = ".json" if ir == "pir" else ".pdmodel"
    return directory / f"inference{suffix}"


IRS = ["legacy"] + (["pir"] if paddle_env().pir_default else [])


@pytest.mark.parametrize("ir", IRS)
@pytest.mark.parametrize("with_softmax", [True, False])
def test_output_kind_is_read_from_the_program(tmp_path, ir, with_softmax):
    program = _save_linear(tmp_path, with_softmax, ir)
    assert output_kind(program) == ("softmax" if with_softmax else "logits")


def test_output_kind_of_an_unreadable_program_is_unknown(tmp_path):
    bad = tmp_path / "inference.pdmodel"
    bad.write_bytes(b"\xff\xff\xff not a program")
    assert output_kind(bad) is None
    assert output_kind(tmp_path / "missing.json") is None


def test_export_writes_the_output_kind_into_the_card(builtin_model):
    from ppinfer.modelfiles.modelcard import read_card

    card = read_card(builtin_model / "inference.yml")
    assert card.provenance["output"] == "softmax"


def test_the_program_outranks_a_card_copied_beside_it(tmp_path):
    from ppinfer.modelfiles.source import resolve_source

    _save_linear(tmp_path, with_softmax=True, ir="legacy")
    card = "Global: {model_name: null}\nppinfer: {output: logits}\n"
    (tmp_path / "inference.yml").write_text(card)
    assert resolve_source(model=str(tmp_path), prefer="legacy").output_kind() == "softmax"


def test_logits_model_gets_softmax_even_when_a_row_sums_to_one(tmp_path):
    """The program says logits: a batch that happens to look like probabilities still gets
    the softmax (the per-batch guess this replaces would have passed it through)."""
    from ppinfer.engines.analysis import AnalysisEngine
    from ppinfer.modelfiles.formats import detect_directory
    from ppinfer.modelfiles.source import ModelSource

    _save_linear(tmp_path, with_softmax=False, ir="legacy")
    source = ModelSource(layout=detect_directory(tmp_path, prefer="legacy"),
                         input_shape=(8, 1, 1))
    engine = AnalysisEngine(source, RunConfig(device="cpu"))
    looks_like_probs = np.array([[0.25, 0.25, 0.25, 0.25]], dtype=np.float32)
    assert engine.output_kind() == "logits"
    assert np.allclose(engine.probabilities(looks_like_probs), 0.25)
    assert engine.probabilities(np.array([[0.0, 0.0, 0.0, 5.0]]))[0, 3] > 0.97


def _predict(model: Path, photos: list[Path], precision: str) -> list:
    from ppinfer.engines import create_engine
    from ppinfer.modelfiles.source import resolve_source
    from ppinfer.pipeline.decode import load_image

    source = resolve_source(model=str(model), prefer="legacy")
    config = RunConfig(device="cpu", precision=precision, bf16_emulation=True, batch_size=1)
    engine = create_engine("analysis", source, config)
    engine.ensure_built()
    return [engine.predict([load_image(str(p))], [str(p)])[0] for p in photos]


@needs_bf16
def test_bf16_gives_fp32s_top1_with_close_scores_on_real_photos(builtin_model, real_photos):
    fp32 = _predict(builtin_model, real_photos, "fp32")
    bf16 = _predict(builtin_model, real_photos, "bf16")
    for a, b in zip(fp32, bf16):
        assert b.class_ids[0] == a.class_ids[0], (a.file_name, a.label_names, b.label_names)
        assert abs(b.scores[0] - a.scores[0]) <= BF16_SCORE_TOLERANCE, (a.scores, b.scores)
    coffee = fp32[PHOTOS.index("coffee")]
    assert coffee.label_names[0] == "espresso" and coffee.scores[0] > 0.9


def _cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PPINFER_BF16_EMULATION": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "ppinfer", *args], capture_output=True,
                          text=True, timeout=600, env=env)


@needs_bf16
def test_paddles_log_lines_stay_off_stdout_and_stderr(builtin_model, real_photos):
    run = _cli("predict", "-i", str(real_photos[1]), "--model", str(builtin_model),
               "--precision", "bf16", "--json")
    assert run.returncode == 0, run.stderr
    assert "marked" not in run.stderr and "---" not in run.stderr, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["label_names"][0] == "espresso"
    # ppinfer's own line only: the fp32 comparison of the first batch
    ours = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(ours) == 1 and ours[0].startswith("bf16 vs fp32 on 1 image: top-1 agrees on 1/1")


@needs_bf16
def test_verbose_lets_paddles_log_lines_through(builtin_model, real_photos):
    run = _cli("--verbose", "predict", "-i", str(real_photos[1]), "--model",
               str(builtin_model), "--precision", "bf16", "--json")
    assert run.returncode == 0, run.stderr
    assert "operators to bfloat16" in run.stderr
    assert json.loads(run.stdout.splitlines()[-1])["label_names"][0] == "espresso"


def test_verbose_lets_paddles_pass_logs_through_at_fp32(builtin_model, real_photos):
    loud = _cli("--verbose", "predict", "-i", str(real_photos[1]), "--model",
                str(builtin_model), "--json")
    assert loud.returncode == 0, loud.stderr
    assert "Running analysis" in loud.stderr  # glog INFO, once disabled even with --verbose
    quiet = _cli("predict", "-i", str(real_photos[1]), "--model", str(builtin_model), "--json")
    assert "Running analysis" not in quiet.stderr and quiet.stdout == loud.stdout


def test_executor_on_a_seed_model_keeps_paddles_deprecation_note_quiet(tmp_path, real_photos):
    """Paddle logs "The old way to load inference model is deprecated" for model + params."""
    from ppinfer.export import export_model
    from ppinfer.models.efficientnet import lite0_weights_path

    out = tmp_path / "seed"
    export_model("EfficientNet_lite0", lite0_weights_path(), out, fmt="seed")
    run = _cli("predict", "-i", str(real_photos[0]), "--model", str(out), "--engine",
               "executor-inference", "--json")
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "", run.stderr
    assert json.loads(run.stdout)["file_name"].endswith("chelsea.png")
    loud = _cli("--verbose", "predict", "-i", str(real_photos[0]), "--model", str(out),
                "--engine", "executor-inference", "--json")
    assert "deprecated" in loud.stderr or paddle_env().major < 3


# -- reduced precision, verified --------------------------------------------------------------


def test_compare_scores_counts_top1_and_the_largest_difference():
    from ppinfer.engines.precision_check import compare_scores

    ref = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3]], dtype=np.float32)
    got = np.array([[0.8, 0.2, 0.0], [0.2, 0.3, 0.5]], dtype=np.float32)
    a = compare_scores(got, ref, "bf16")
    assert (a.images, a.top1_agree) == (2, 1)
    assert a.max_score_diff == pytest.approx(0.2)
    assert not a.within(0.05) and compare_scores(ref, ref, "bf16").within(0.0)


@needs_bf16
def test_checked_bf16_engine_reports_its_agreement_with_fp32(builtin_model, real_photos):
    from ppinfer.engines import create_engine
    from ppinfer.engines.precision_check import CheckedEngine, agreement_message
    from ppinfer.modelfiles.source import resolve_source
    from ppinfer.pipeline.decode import load_image

    source = resolve_source(model=str(builtin_model), prefer="legacy")
    config = RunConfig(device="cpu", precision="bf16", bf16_emulation=True)
    checked = CheckedEngine(create_engine("analysis", source, config))
    checked.ensure_built()
    results = checked.predict([load_image(str(real_photos[1]))], ["coffee"])
    assert results[0].label_names[0] == "espresso"
    message = agreement_message(checked)
    assert checked.agreement.top1_agree == 1 and checked.agreement.max_score_diff <= 0.05
    assert message.startswith("bf16 vs fp32 on 1 image") and "warning" not in message
    strict = agreement_message(checked, tolerance=checked.agreement.max_score_diff / 2)
    assert strict.startswith("warning: bf16 vs fp32") and "largest score difference" in strict


@needs_bf16
def test_engine_all_in_bf16_compares_each_engine_with_analysis_fp32(builtin_model, real_photos):
    from ppinfer.engines.parity import compare_engines
    from ppinfer.modelfiles.source import resolve_source
    from ppinfer.pipeline.inputs import expand_inputs

    source = resolve_source(model=str(builtin_model), prefer="legacy")
    config = RunConfig(device="cpu", precision="bf16", bf16_emulation=True).resolve()
    report = compare_engines(source, config, expand_inputs([str(real_photos[0])]))
    reference = report.runs[0]
    assert (reference.engine, reference.precision, reference.max_abs_diff) == (
        "analysis", "fp32", 0.0)
    bf16 = [r for r in report.runs if r.precision == "bf16" and r.skipped is None]
    assert [r.engine for r in bf16][:1] == ["analysis"]
    for run in bf16:
        assert 0 < run.max_abs_diff <= 0.05 and run.top1_agree == 1.0
    skipped = {r.engine: r.skipped for r in report.runs if r.skipped}
    assert skipped["executor-inference"] == "runs fp32 only"
    assert not report.disagreeing


@needs_bf16
def test_bench_in_bf16_alone_still_compares_with_fp32(builtin_model, real_photos):
    from ppinfer.bench import BenchModel, BenchSettings, StopRule, run_bench
    from ppinfer.modelfiles.source import resolve_source
    from ppinfer.pipeline.inputs import expand_inputs

    source = resolve_source(model=str(builtin_model), prefer="legacy")
    settings = BenchSettings(engines=["analysis"], precisions=["bf16"], warmup=0,
                             stop=StopRule(iterations=1),
                             inputs=expand_inputs([str(p) for p in real_photos[:2]]))

    def make_config(batch, precision, threads):
        return RunConfig(device="cpu", batch_size=batch, precision=precision,
                         cpu_threads=threads, bf16_emulation=True).resolve()

    (result,) = run_bench([BenchModel("lite0", source)], settings, make_config).results
    assert result.status == "ok", result.reason
    assert result.top1_vs_fp32 == 1.0
    assert 0 < result.score_diff_vs_fp32 <= 0.05
