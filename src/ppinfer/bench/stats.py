"""The arithmetic of a benchmark: latency percentiles, throughput, stability. Pure Python.

Percentiles interpolate linearly between the two nearest ranks (NumPy's default ``linear``
method): the p-th percentile of n sorted values sits at rank ``p / 100 * (n - 1)``. The
coefficient of variation is the population standard deviation over the mean; over 10% the
run is flagged unstable, as trtexec does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

PERCENTILES = (50, 90, 99)
UNSTABLE_CV = 0.10


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, interpolated linearly between ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def throughput(images: int, seconds: float) -> float:
    """Images per second; 0 when nothing was timed."""
    return images / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class LatencyStats:
    """Per-batch latency figures in milliseconds, over ``count`` timed batches."""

    count: int
    min_ms: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    std_ms: float

    @classmethod
    def from_seconds(cls, seconds: Sequence[float]) -> LatencyStats:
        if not seconds:
            raise ValueError("no latencies were measured")
        ms = [1000.0 * s for s in seconds]
        mean = sum(ms) / len(ms)
        std = math.sqrt(sum((x - mean) ** 2 for x in ms) / len(ms))
        p50, p90, p99 = (percentile(ms, q) for q in PERCENTILES)
        return cls(len(ms), min(ms), mean, p50, p90, p99, max(ms), std)

    @property
    def cv(self) -> float:
        """Coefficient of variation: standard deviation / mean."""
        return self.std_ms / self.mean_ms if self.mean_ms > 0 else 0.0

    @property
    def unstable(self) -> bool:
        return self.cv > UNSTABLE_CV

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "cv": self.cv}
