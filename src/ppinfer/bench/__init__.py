"""``ppinfer bench``: engines x batch sizes x precisions x threads in one run, written down.

- :mod:`~ppinfer.bench.stats`: percentiles, throughput, coefficient of variation (pure)
- :mod:`~ppinfer.bench.measure`: the measuring class (build, first run, warmup, timed loops)
- :mod:`~ppinfer.bench.run`: the grid of cases, skips with reasons, ratios and agreements
- :mod:`~ppinfer.bench.report`: JSON (every figure + environment), rich table, plot
"""

from ppinfer.bench.measure import EngineBenchmark, Measurement, Phase, StopRule
from ppinfer.bench.run import (
    BenchModel,
    BenchReport,
    BenchSettings,
    Case,
    CaseResult,
    expand_engines,
    run_bench,
)
from ppinfer.bench.stats import LatencyStats, percentile, throughput

__all__ = [
    "BenchModel", "BenchReport", "BenchSettings", "Case", "CaseResult", "EngineBenchmark",
    "LatencyStats", "Measurement", "Phase", "StopRule", "expand_engines", "percentile",
    "run_bench", "throughput",
]

# ``ppinfer.bench(...)``, the Python API's bench, is this package called (_CallableModule in
# ppinfer/__init__.py).
from ppinfer import _make_callable  # noqa: E402

_make_callable(__name__, "ppinfer.api.benchmarking:bench")
