"""A benchmark report out: the JSON document (every figure + the environment), a rich table,
and a plot. Nothing here measures; :mod:`ppinfer.bench.measure` does.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from ppinfer import __version__
from ppinfer.bench.run import BenchReport, CaseResult
from ppinfer.bench.stats import UNSTABLE_CV
from ppinfer.bench.table import WIDE, print_bench_table
from ppinfer.runtime.paddle_env import package_version

SCHEMA = "ppinfer-bench/1"
GPU_NOTE = ("unverified on a GPU: read from nvidia-smi; no GPU could run Paddle where ppinfer "
            "was built")


# -- JSON ---------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    """The machine and software a run measured: CPU, Paddle build, versions, date."""
    from ppinfer.runtime.paddle_env import paddle_env
    from ppinfer.runtime.paddle_import import import_paddle

    env = paddle_env()
    paddle = import_paddle()
    build = {}
    for key in ("full_version", "commit", "with_mkl", "cuda_version", "cudnn_version",
                "tensorrt_version"):
        value = getattr(paddle.version, key, None)
        if value is not None:
            build[key] = str(value)
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = env.cpu_count
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": {
            "model": env.cpu_model,
            "cores": env.cpu_count,
            "usable_cores": usable,
            "avx512_bf16": env.has_avx512_bf16,
            "flags": sorted(env.cpu_flags),
            "memory_gb": _memory_gb(),
        },
        "paddle": {
            "version": env.version,
            "build": build,
            "ir": "PIR" if env.pir_default else "legacy",
            "onednn": env.with_onednn,
            "cuda": env.with_cuda,
            "tensorrt": env.tensorrt_version,
            "gpus": env.gpu_count,
        },
        "ppinfer": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: package_version(name) for name in
                     ("numpy", "opencv-python", "opencv-python-headless", "onnxruntime",
                      "paddle2onnx", "openvino")},
    }


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def to_json(report: BenchReport, env: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole report as one JSON-ready dict (schema ``ppinfer-bench/1``)."""
    s = report.settings
    base_engine, base_precision = s.resolved_baseline()
    return {
        "schema": SCHEMA,
        "environment": environment() if env is None else env,
        "settings": {
            "engines": list(s.engines),
            "batch_sizes": list(s.batch_sizes),
            "precisions": (list(s.precisions) if None not in s.precisions  # None: the models'
                           else list(dict.fromkeys(r.case.precision for r in report.results))),
            "cpu_threads": list(s.cpu_threads),
            "warmup": s.warmup, "rounds": s.rounds,
            "iterations": s.stop.iterations,
            "duration_s": s.stop.effective_duration,
            "input": "random" if s.inputs is None else [item.path for item in s.inputs],
            "end_to_end": s.end_to_end,
            "baseline": {"engine": base_engine, "precision": base_precision},
            "unstable_cv": UNSTABLE_CV,
        },
        "models": [
            {"label": m.label,
             "path": str(m.source.layout.root) if m.source.layout else None,
             "format": m.source.layout.kind if m.source.layout else None,
             "model_name": m.source.model_name,
             "input_shape": list(m.source.input_shape)}
            for m in report.models
        ],
        "started": _dt.datetime.fromtimestamp(report.started, _dt.timezone.utc)
        .isoformat(timespec="seconds"),
        "duration_s": report.seconds,
        "results": [case_json(r) for r in report.results],
    }


def case_json(r: CaseResult) -> dict[str, Any]:
    """One configuration's figures; every key is present, None where it does not apply."""
    c, m = r.case, r.measurement
    out: dict[str, Any] = {
        "model": c.model, "engine": c.engine, "precision": c.precision,
        "batch_size": c.batch_size, "cpu_threads_requested": c.cpu_threads,
        "cpu_threads": r.cpu_threads, "device": r.device, "status": r.status, "reason": r.reason,
        "build_s": None, "first_run_ms": None, "warmup": None, "iterations": None,
        "latency_ms": None, "unstable": None, "throughput_ips": None, "wall_s": None,
        "cpu_s": None, "cores_used": None, "load_avg_1m": None,
        "end_to_end": None, "peak_rss_mb": None, "peak_rss_scope": None, "rss_before_mb": None,
        "gpu_memory_mb": None, "gpu_memory_note": None,
        "ratio_to_baseline": r.ratio, "e2e_ratio_to_baseline": r.e2e_ratio,
        "top1_vs_fp32": r.top1_vs_fp32, "score_diff_vs_fp32": r.score_diff_vs_fp32,
        "top1_vs_baseline": r.top1_vs_baseline, "top1": None,
    }
    if m is None:
        return out
    stats = m.engine.stats
    out.update(
        build_s=m.build_s, first_run_ms=m.first_run_ms, warmup=m.warmup,
        iterations=stats.count, latency_ms=stats.to_dict(), unstable=stats.unstable,
        throughput_ips=m.engine.throughput, wall_s=m.engine.wall_s,
        cpu_s=m.engine.cpu_s, cores_used=m.engine.cores_used, load_avg_1m=m.engine.load_avg,
        peak_rss_mb=m.peak_rss_mb, peak_rss_scope=m.peak_rss_scope, rss_before_mb=m.rss_before_mb,
        gpu_memory_mb=m.gpu_memory_mb, top1=m.top1,
        gpu_memory_note=GPU_NOTE if r.device and r.device.startswith("gpu") else None,
    )
    if m.end_to_end is not None:
        e2e = m.end_to_end
        e2e_stats = e2e.stats
        out["end_to_end"] = {
            "iterations": e2e_stats.count, "images": e2e.images, "wall_s": e2e.wall_s,
            "latency_ms": e2e_stats.to_dict(), "unstable": e2e_stats.unstable,
            "throughput_ips": e2e.throughput, "stages_ms_per_image": e2e.stages_ms,
            "cpu_s": e2e.cpu_s, "cores_used": e2e.cores_used, "load_avg_1m": e2e.load_avg,
            "vs_engine_only": e2e.throughput / m.engine.throughput if m.engine.throughput else None,
        }
    return out


def write_json(report: BenchReport, path: str | os.PathLike[str]) -> dict[str, Any]:
    document = to_json(report)
    Path(path).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return document


# -- table and notes ---------------------------------------------------------------------------


def print_table(report: BenchReport, console=None) -> None:
    """The configurations that ran (:mod:`ppinfer.bench.table`), then skips and warnings."""

    from ppinfer.pipeline.output import console as Console  # noqa: N812

    if console is None:
        console = Console()
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console = Console(width=WIDE)  # a file or a pipe
    print_bench_table(report, console)
    for line in notes(report):
        console.print(line, highlight=False, soft_wrap=True)


def _precision_warning(r: CaseResult) -> list[str]:
    from ppinfer.engines.precision_check import SCORE_TOLERANCE

    if r.case.precision == "fp32" or r.score_diff_vs_fp32 is None:
        return []
    if r.top1_vs_fp32 == 1.0 and r.score_diff_vs_fp32 <= SCORE_TOLERANCE:
        return []
    return [f"warning: {r.case.describe()}: top-1 agrees with fp32 on "
            f"{100 * r.top1_vs_fp32:.0f}% of inputs, largest score difference "
            f"{r.score_diff_vs_fp32:.3f} (tolerance {SCORE_TOLERANCE:g})."]


def notes(report: BenchReport) -> list[str]:
    """One line per skipped or failed configuration; unstable measurements folded into one
    line per phase (a busy machine makes every configuration vary: one warning says so)."""
    lines = []
    unstable: dict[str, list[tuple[float, CaseResult]]] = {"": [], "end-to-end ": []}
    for r in report.results:
        if r.status != "ok":
            lines.append(f"{r.status}: {r.case.describe()}: {r.reason}")
            continue
        lines += _precision_warning(r)
        phases = [("", r.measurement.engine), ("end-to-end ", r.measurement.end_to_end)]
        for label, phase in phases:
            if phase is not None and phase.latencies and phase.stats.unstable:
                unstable[label].append((phase.stats.cv, r))
    ran = sum(r.status == "ok" for r in report.results)
    for label, cases in unstable.items():
        if cases:
            lines.append(_unstable_line(label, cases, ran))
    return lines


def _unstable_line(label: str, cases: list[tuple[float, CaseResult]], ran: int) -> str:
    advice = ("the machine was busy or the run too short; run longer (--duration) or on a "
              "quiet machine.")
    over = f"{100 * UNSTABLE_CV:g}%"
    cv, worst = max(cases, key=lambda case: case[0])
    if len(cases) == 1:
        return (f"warning: {worst.case.describe()}: {label}latency varied by "
                f"{percent_over(cv, UNSTABLE_CV)} (over {over}): {advice}")
    return (f"warning: {label}latency varied by over {over} in {len(cases)} of {ran} "
            f"configurations (most: {percent_over(cv, UNSTABLE_CV)}, "
            f"{worst.case.describe()}): {advice}")


def percent_over(value: float, limit: float) -> str:
    """``value`` as a percentage with as many decimals as it takes to show it is over ``limit``
    (0.1004 over 0.10 is "10.04%", never "10%")."""
    for decimals in range(4):
        shown = f"{100 * value:.{decimals}f}"
        if float(shown) > 100 * limit:
            return shown + "%"
    return f"{100 * value:.4f}%"


# -- plot ---------------------------------------------------------------------------------------


def plot_path(path: str | os.PathLike[str]) -> Path:
    """The file ``--plot path`` writes (``.png`` added when it has no extension), checked
    before any measuring: matplotlib is installed and can write that kind of file."""
    from ppinfer.errors import ConfigError

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        raise ConfigError(
            "--plot needs matplotlib: pip install 'ppinfer[bench]' (or matplotlib)."
        ) from None
    path = Path(path)
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    kinds = FigureCanvasAgg.get_supported_filetypes()
    if path.suffix[1:].lower() not in kinds:
        raise ConfigError(f"--plot {path}: matplotlib cannot write {path.suffix} files; use "
                          f"one of {', '.join('.' + k for k in sorted(kinds))}.")
    return path


def write_plot(report: BenchReport, path: str | os.PathLike[str]) -> Path:
    """Throughput and p99 latency against batch size: a row per model, a line per engine and
    precision (and thread count, when several were run). Returns the file written
    (:func:`plot_path`)."""
    path = plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r.case.model for r in report.results))
    several_threads = len({r.cpu_threads for r in report.results if r.status == "ok"}) > 1
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4 * len(models)), squeeze=False)
    for row, model in zip(axes, models):
        lines: dict[str, list[tuple[int, float, float]]] = {}
        for r in report.results:
            if r.case.model != model or r.measurement is None:
                continue
            label = f"{r.case.engine} {r.case.precision}"
            if several_threads:
                label += f" t{r.cpu_threads}"
            m = r.measurement
            lines.setdefault(label, []).append(
                (r.case.batch_size, m.engine.throughput, m.engine.stats.p99_ms))
        for label, points in sorted(lines.items()):
            points.sort()
            batches = [p[0] for p in points]
            row[0].plot(batches, [p[1] for p in points], marker="o", label=label)
            row[1].plot(batches, [p[2] for p in points], marker="o", label=label)
        for ax, ylabel in zip(row, ("throughput (images/s)", "p99 latency per batch (ms)")):
            ax.set_title(model)
            ax.set_xlabel("batch size")
            ax.set_ylabel(ylabel)
            ax.set_xscale("log", base=2)
            ticks = sorted({b for points in lines.values() for b, _, _ in points})
            ax.set_xticks(ticks, [str(b) for b in ticks])
            ax.grid(True, alpha=0.3)
            if lines:
                ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
