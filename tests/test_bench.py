"""ppinfer bench: the statistics, the measuring loop on a fake clock, and real runs on a tiny
exported model (schema of the JSON, skips with reasons, end-to-end stages). No speed asserted."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from ppinfer.bench import LatencyStats, StopRule, percentile, throughput
from ppinfer.bench import measure as measure_mod
from ppinfer.bench.measure import EngineBenchmark
from ppinfer.bench.run import BenchModel, BenchSettings, Case, agreement, run_bench, run_case
from ppinfer.cli import cli
from ppinfer.config import RunConfig
from ppinfer.errors import ConfigError
from ppinfer.runtime.paddle_env import paddle_env

from .conftest import CLASS_NUM, save_persistable

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

TINY = "MobileNetV3_small_x0_35"
TINY_SHAPE = (3, 64, 64)


# -- statistics -----------------------------------------------------------------------------


def test_percentile_interpolates_linearly_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # sorted: 1 2 3 4; rank = q/100 * 3
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile(values, 99) == pytest.approx(3.97)
    assert percentile([7.0], 99) == 7.0
    rng = np.random.default_rng(1)
    sample = rng.exponential(size=101).tolist()
    for q in (1, 50, 90, 99):
        assert percentile(sample, q) == pytest.approx(np.percentile(sample, q))
    with pytest.raises(ValueError):
        percentile([], 50)


def test_latency_stats_are_in_milliseconds_with_population_cv() -> None:
    stats = LatencyStats.from_seconds([0.001, 0.002, 0.003, 0.004])
    assert (stats.count, stats.min_ms, stats.max_ms) == (4, pytest.approx(1.0), pytest.approx(4.0))
    assert stats.mean_ms == pytest.approx(2.5)
    assert (stats.p50_ms, stats.p90_ms, stats.p99_ms) == (
        pytest.approx(2.5), pytest.approx(3.7), pytest.approx(3.97))
    assert stats.std_ms == pytest.approx(math.sqrt(1.25))
    assert stats.cv == pytest.approx(math.sqrt(1.25) / 2.5)
    assert stats.unstable
    steady = LatencyStats.from_seconds([0.010, 0.0105, 0.0095, 0.010])
    assert steady.cv < 0.1 and not steady.unstable
    assert set(stats.to_dict()) == {"count", "min_ms", "mean_ms", "p50_ms", "p90_ms", "p99_ms",
                                    "max_ms", "std_ms", "cv"}


def test_throughput_and_agreement() -> None:
    assert throughput(80, 2.0) == 40.0
    assert throughput(0, 0.0) == 0.0
    assert agreement([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    assert agreement(None, [1]) is None


def test_stop_rule_count_duration_and_default() -> None:
    assert StopRule(iterations=3).done(3, 0.0) and not StopRule(iterations=3).done(2, 99.0)
    assert StopRule(duration=1.0).done(1, 1.0) and not StopRule(duration=1.0).done(5, 0.5)
    both = StopRule(iterations=10, duration=1.0)
    assert both.done(10, 0.1) and both.done(2, 1.5)
    assert not StopRule(duration=0.1).done(0, 5.0)  # at least one timed batch
    assert StopRule().effective_duration == measure_mod.DEFAULT_DURATION
    with pytest.raises(ValueError):
        StopRule(iterations=0)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _FakeEngine:
    """Each execute takes 10, 20, 30, 10, 20, 30 ... ms of fake time."""

    def __init__(self, clock: _Clock) -> None:
        self.clock, self.calls, self.built = clock, 0, False
        self.config = RunConfig(device="cpu", batch_size=4)

    def ensure_built(self) -> None:
        self.clock.now += 1.5
        self.built = True

    def execute(self, batch):
        self.clock.now += (10, 20, 30)[self.calls % 3] / 1000
        self.calls += 1
        return np.zeros((len(batch), 3), np.float32)


def test_measuring_class_times_first_run_apart_and_skips_warmup(monkeypatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(measure_mod.time, "perf_counter", clock)
    engine = _FakeEngine(clock)
    bench = EngineBenchmark(engine, StopRule(iterations=6), warmup=2)
    batch = np.zeros((4, 3, 8, 8), np.float32)
    assert bench.build() == pytest.approx(1.5)
    assert bench.first_run(batch) == pytest.approx(0.010)  # call 0
    phase = bench.time_engine(batch)  # calls 1, 2 warm up; 3..8 are timed
    assert engine.calls == 9
    assert [round(x * 1000) for x in phase.latencies] == [10, 20, 30, 10, 20, 30]
    assert phase.images == 24
    assert phase.wall_s == pytest.approx(0.120)
    assert phase.throughput == pytest.approx(200.0)
    assert phase.stats.mean_ms == pytest.approx(20.0)
    assert phase.stats.p50_ms == pytest.approx(20.0)


# -- real runs on a tiny exported model --------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    import paddle

    from ppinfer.models import get_model
    from ppinfer.models.program import build_static_model

    paddle.seed(0)
    model = build_static_model(get_model(TINY), CLASS_NUM, TINY_SHAPE, ir="legacy")
    return save_persistable(model, tmp_path_factory.mktemp("tiny") / "persistable")


def export_tiny(checkpoint, out, fmt=None):
    from ppinfer.export import export_model

    export_model(TINY, checkpoint, out, class_num=CLASS_NUM, input_shape=TINY_SHAPE, fmt=fmt,
                 validate=False)
    return out


@pytest.fixture(scope="module")
def tiny_model(tiny_checkpoint, tmp_path_factory):
    return export_tiny(tiny_checkpoint, tmp_path_factory.mktemp("tiny-model") / "model")


def _bench(args):
    result = CliRunner().invoke(cli, ["bench", *args])
    return result


def test_bench_json_holds_every_figure_and_skips_what_cannot_run(tiny_model, tmp_path) -> None:
    out = tmp_path / "r.json"
    result = _bench(["--model", str(tiny_model), "--engine", "analysis,executor-inference",
                     "-b", "1,2", "--precision", "fp32,fp16", "--cpu-threads", "1",
                     "--iterations", "3", "--warmup", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["schema"] == "ppinfer-bench/1"
    env = doc["environment"]
    assert env["paddle"]["version"] == paddle_env().version
    assert env["paddle"]["build"]["commit"]
    assert env["cpu"]["model"] and env["cpu"]["cores"] >= 1
    assert isinstance(env["cpu"]["flags"], list)
    assert env["ppinfer"] and env["date"]
    assert doc["settings"]["baseline"] == {"engine": "analysis", "precision": "fp32"}
    results = doc["results"]
    assert len(results) == 8
    keys = set(results[0])
    assert all(set(r) == keys for r in results)
    ok = [r for r in results if r["status"] == "ok"]
    assert {(r["engine"], r["precision"]) for r in ok} == {("analysis", "fp32"),
                                                          ("executor-inference", "fp32")}
    for r in ok:
        lat = r["latency_ms"]
        assert r["iterations"] == lat["count"] == 3
        assert lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
        assert r["throughput_ips"] == pytest.approx(r["batch_size"] * 3 / r["wall_s"])
        assert r["unstable"] == (lat["cv"] > 0.10)
        assert r["build_s"] > 0 and r["first_run_ms"] > 0
        assert r["peak_rss_mb"] >= r["rss_before_mb"] > 0
        assert r["cpu_threads"] == 1 and r["gpu_memory_mb"] is None
        assert r["cpu_s"] > 0 and r["cores_used"] == pytest.approx(r["cpu_s"] / r["wall_s"])
    base = [r for r in ok if r["engine"] == "analysis"]
    assert all(r["ratio_to_baseline"] == pytest.approx(1.0) for r in base)
    skipped = [r for r in results if r["status"] == "skipped"]
    assert all(r["reason"].endswith(".") and r["latency_ms"] is None for r in skipped)
    assert any("fp16 needs a GPU" in r["reason"] for r in skipped if r["engine"] == "analysis")
    assert "skipped: " in result.output


def test_end_to_end_on_real_photos_reports_stages_and_agreement(tiny_model, photos, tmp_path):
    out = tmp_path / "r.json"
    result = _bench(["--model", str(tiny_model), "-b", "2", "--iterations", "3", "--warmup", "0",
                     "--input", str(photos["chelsea"].parent), "--end-to-end",
                     "--json", str(out)])
    assert result.exit_code == 0, result.output
    (r,) = json.loads(out.read_text())["results"]
    e2e = r["end_to_end"]
    assert e2e["iterations"] == 3 and e2e["images"] == 6
    assert set(e2e["stages_ms_per_image"]) == {"preprocess", "inference", "postprocess"}
    assert all(v > 0 for v in e2e["stages_ms_per_image"].values())
    assert e2e["throughput_ips"] == pytest.approx(6 / e2e["wall_s"])
    assert e2e["vs_engine_only"] == pytest.approx(e2e["throughput_ips"] / r["throughput_ips"])
    assert len(r["top1"]) == len(photos) and r["top1_vs_fp32"] == 1.0


def test_plot_is_written(tiny_model, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "r.png"
    result = _bench(["--model", str(tiny_model), "-b", "1,2", "--iterations", "2",
                     "--warmup", "0", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unrunnable_configurations_are_skipped_with_the_reason(tiny_model) -> None:
    from ppinfer.modelfiles.source import resolve_source

    source = resolve_source(model=str(tiny_model))
    settings = BenchSettings(engines=["analysis"], stop=StopRule(iterations=1), warmup=0)

    def refuse(batch_size, precision, cpu_threads):
        raise ConfigError("This CPU has no avx512_bf16, so bf16 would be emulated and slow.")

    skipped = run_case(source, Case("m", "analysis", "bf16", 1, None), settings, refuse)
    assert (skipped.status, skipped.reason) == ("skipped", "This CPU has no avx512_bf16, so "
                                                "bf16 would be emulated and slow.")
    make = lambda b, p, t: RunConfig(device="cpu", batch_size=b, precision=p).resolve()  # noqa: E731
    int8 = run_case(source, Case("m", "analysis", "int8", 1, None), settings, make)
    assert int8.status == "skipped" and "quantized model" in int8.reason
    report = run_bench([BenchModel("m", source)], settings, make)
    assert [r.status for r in report.results] == ["ok"]


def test_usage_errors_exit_2_with_one_sentence(tiny_model) -> None:
    result = _bench(["--model", str(tiny_model), "--end-to-end"])
    assert result.exit_code == 2 and "--input PATH" in result.output
    result = _bench(["--model", str(tiny_model), "--engine", "nope"])
    assert result.exit_code == 2 and "Unknown engine 'nope'" in result.output
    result = _bench(["--model", str(tiny_model), "-b", "1,x"])
    assert result.exit_code == 2 and "comma-separated" in result.output


# -- predict's overlapped pipeline (what --end-to-end times) -----------------------------------


def test_predict_keeps_input_order_and_per_image_errors_with_prefetch(tiny_model, photos,
                                                                      tmp_path) -> None:
    from ppinfer.engines import create_engine
    from ppinfer.modelfiles.source import resolve_source
    from ppinfer.pipeline.inputs import InputItem
    from ppinfer.predict import run_predictions

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    paths = [photos["chelsea"], bad, photos["coffee"], photos["astronaut"], tmp_path / "gone.png",
             photos["chelsea"], photos["coffee"]]
    items = [InputItem(str(p)) for p in paths] + [InputItem("x/*.jpg", error="No files match.")]
    engine = create_engine("analysis", resolve_source(model=str(tiny_model)),
                           RunConfig(device="cpu", batch_size=3))
    seen, batches = [], []
    summary = run_predictions(engine, items, seen.append, on_batch=batches.append)
    assert [r.file_name for r in seen] == [i.path for i in items]
    assert [r.error is not None for r in seen] == [False, True, False, False, True, False, False,
                                                  True]
    assert (summary.results, summary.errors, summary.timer.images) == (5, 3, 5)
    assert batches == [3, 3, 2]
    assert seen[0].class_ids == seen[5].class_ids and seen[2].scores == seen[6].scores


def test_stop_rule_shares_its_batches_out_over_rounds() -> None:
    assert [s.iterations for s in StopRule(iterations=7).slices(3)] == [3, 2, 2]
    assert [s.iterations for s in StopRule(iterations=2).slices(3)] == [1, 1]
    assert [s.duration for s in StopRule(duration=6.0).slices(3)] == [2.0, 2.0, 2.0]
    assert sum(s.duration for s in StopRule().slices(4)) == pytest.approx(5.0)


@pytest.fixture
def recording_engine():
    """An analysis engine that logs each batch it runs (by batch size), registered for one
    test only."""
    from ppinfer.engines.analysis import AnalysisEngine
    from ppinfer.engines.base import ENGINES, register_engine

    log: list[int] = []

    @register_engine("recording-test")
    class Recording(AnalysisEngine):
        def execute(self, batch):
            log.append(len(batch))
            return super().execute(batch)

    yield log
    ENGINES.pop("recording-test")


def test_bench_times_configurations_in_interleaved_rounds(tiny_model, recording_engine):
    from ppinfer.api.benchmarking import bench_report

    report = bench_report(str(tiny_model), engine="recording-test", batch_size=[1, 2],
                          iterations=6, warmup=0, rounds=3)
    assert [r.measurement.engine.stats.count for r in report.results] == [6, 6]
    sizes = [size for size in recording_engine]
    first_b2 = sizes.index(2)
    assert 1 in sizes[first_b2:sizes.index(1, first_b2) + 1], "b1 never ran again after b2"
    # three slices each: the batch size changes at least five times after the first runs
    changes = sum(a != b for a, b in zip(sizes, sizes[1:]))
    assert changes >= 5, sizes
