"""``ppinfer.bench()``: the grid ``ppinfer bench`` measures, returned as its ``--json`` rows.

``ppinfer bench`` calls :func:`bench_report` too, then prints the table and writes the files.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from ppinfer.api.options import RUN_OPTIONS, check_options
from ppinfer.api.options import run_config as make_run_config
from ppinfer.config import PRECISIONS
from ppinfer.errors import ConfigError

# run options bench takes as lists (one configuration per value)
LIST_VALUED = ("batch_size", "precision", "cpu_threads")
DEVICE_OPTIONS = {k: v for k, v in RUN_OPTIONS.items() if k not in (*LIST_VALUED, "top_k")}


def bench(model: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Measure and return one dict per configuration: the rows ``ppinfer bench --json`` writes
    under ``"results"`` (status, reason, latency_ms, throughput_ips, ratio_to_baseline, ...).

    Takes :func:`bench_report`'s arguments:
    """
    from ppinfer.bench.report import case_json

    return [case_json(r) for r in bench_report(model, **kwargs).results]


def bench_report(
    model: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    engine: str | Sequence[str] | None = None,
    batch_size: int | str | Sequence[int] = 1,
    precision: str | Sequence[str] | None = None,
    cpu_threads: int | str | Sequence[int] | None = None,
    warmup: int = 5,
    iterations: int | None = None,
    duration: float | None = None,
    rounds: int = 3,
    input: str | os.PathLike = "random",  # noqa: A002 (the CLI's --input)
    end_to_end: bool = False,
    baseline: str | None = None,
    on_case: Callable | None = None,
    **options: Any,
):
    """Run the benchmark grid and return the :class:`ppinfer.bench.BenchReport`.

    ``model``: one model directory or several (default: the built-in model). ``engine``,
    ``batch_size``, ``precision``, ``cpu_threads``: one value, a list, or a comma string as on
    the command line (``engine="all"`` runs every engine; no ``precision``: each model's own,
    int8 for a model ``ppinfer quantize`` wrote, else fp32). ``options``: the device options
    (``use_gpu``, ``mkldnn``, ``ir_optim``, ...). The timed batches (``iterations`` or
    ``duration``) are shared out over ``rounds`` interleaved rounds, every configuration
    timing one slice per round. ``on_case(index, total, result)`` is called for each
    configuration once all are measured.
    """
    from ppinfer.bench import BenchSettings, StopRule, expand_engines, run_bench

    check_options(options, DEVICE_OPTIONS, "ppinfer.bench()")
    if end_to_end and os.fspath(input) == "random":
        raise ConfigError("end_to_end times real images: pass input=PATH (--input PATH).")
    if warmup < 0:
        raise ConfigError("warmup must be 0 or more.")
    if rounds < 1:
        raise ConfigError("rounds must be at least 1.")
    if iterations is not None and iterations < 1:
        raise ConfigError("iterations must be at least 1.")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise ConfigError("duration must be a finite number of seconds, more than 0.")
    engine_names = expand_engines(engine if engine is not None else default_bench_engines())
    if baseline:
        expand_engines(baseline.partition(":")[0])
    # A device setup error (e.g. use_gpu on a CPU build) stops here, before any measuring.
    make_run_config(**options)

    def make_config(batch: int, precision: str, threads: int | None):
        return make_run_config(**options, batch_size=batch, precision=precision,
                               cpu_threads=threads)

    settings = BenchSettings(
        engines=engine_names, batch_sizes=int_list("batch_size", batch_size),
        precisions=[None] if precision is None else precision_list(precision),
        cpu_threads=int_list("cpu_threads", cpu_threads) if cpu_threads is not None else [None],
        warmup=warmup, stop=StopRule(iterations=iterations, duration=duration),
        inputs=_inputs(input), end_to_end=end_to_end, baseline=baseline, rounds=rounds,
        engines_named=engine is not None or _engine_from_env() is not None,
    )
    return run_bench(bench_models(model), settings, make_config, on_case=on_case)


# help(ppinfer.bench) and IDEs show the arguments bench passes on, not ``**kwargs``
bench.__signature__ = inspect.signature(bench_report).replace(  # type: ignore[attr-defined]
    return_annotation="list[dict[str, Any]]")
bench.__doc__ = f"{bench.__doc__.rstrip()}\n\n{bench_report.__doc__.split(chr(10) * 2, 1)[1]}"


def default_bench_engines() -> list[str]:
    """What bench measures when no engine is named: ``$PPINFER_ENGINE`` (a comma list), else
    the installed engines ``--engine auto`` chooses among (analysis alone without peers)."""
    from ppinfer.engines.auto import installed_candidates

    given = _engine_from_env()
    return _split(given) if given is not None else installed_candidates()


def _engine_from_env() -> str | None:
    """``$PPINFER_ENGINE`` when it names engines (not empty, not ``auto``), else None."""
    from ppinfer.engines.auto import DEFAULT_ENGINE_ENV

    given = os.environ.get(DEFAULT_ENGINE_ENV, "").strip()
    return given if given and given != "auto" else None


def _split(value: Any) -> list:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (int, float)):
        return [value]
    return list(value)


def int_list(name: str, value: Any) -> list[int]:
    """``8``, ``"1,8"`` or ``[1, 8]`` -> ``[1, 8]`` (duplicates dropped)."""
    try:
        numbers = [int(v) for v in _split(value)]
    except (TypeError, ValueError):
        numbers = []
    if not numbers or min(numbers) < 1:
        raise ConfigError(f"{name} must be whole numbers of at least 1 (such as 1,8,32), "
                          f"not {value!r}.")
    return list(dict.fromkeys(numbers))


def precision_list(value: Any) -> list[str]:
    names = [str(v) for v in _split(value)]
    unknown = [n for n in names if n not in PRECISIONS]
    if unknown or not names:
        raise ConfigError(f"Unknown precision {', '.join(unknown) or repr(value)}: use "
                          f"{', '.join(PRECISIONS)}.")
    return list(dict.fromkeys(names))


def _inputs(spec: str | os.PathLike):
    if os.fspath(spec) == "random":
        return None
    from ppinfer.pipeline.inputs import expand_inputs

    return expand_inputs([spec])


def bench_models(paths):
    """Each model directory as a labelled :class:`BenchModel` (default: the built-in model)."""
    from ppinfer.bench import BenchModel
    from ppinfer.modelfiles.formats import RUN_PREFERENCE
    from ppinfer.modelfiles.source import resolve_source

    if paths is None or isinstance(paths, (str, os.PathLike)):
        paths = [] if paths is None else [paths]
    if not paths:
        from ppinfer.api.builtin_model import default_model_dir

        paths = [default_model_dir()]
    sources = [resolve_source(model=os.fspath(p), prefer=RUN_PREFERENCE)
               for p in paths]
    from ppinfer.pipeline.output import control_escaped

    # Shown in tables: a card's model name cannot carry escape codes to the terminal.
    names = [control_escaped(s.model_name or s.display_name) for s in sources]
    return [
        BenchModel(name if names.count(name) == 1 else s.layout.root.name, s)
        for name, s in zip(names, sources)
    ]
