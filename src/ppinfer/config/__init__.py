"""The run configuration: what the user asked for, resolved once against this machine
(:mod:`~ppinfer.config.run`), and its translation to ``paddle.inference.Config`` calls
(:mod:`~ppinfer.config.paddle_calls`)."""

from ppinfer.config.paddle_calls import ConfigCall, PrecisionType, apply_calls
from ppinfer.config.run import (
    MAX_BATCH_SIZE,
    PRECISIONS,
    THREADS_PER_CORE_MAX,
    RunConfig,
    default_cache_dir,
)

__all__ = ["MAX_BATCH_SIZE", "PRECISIONS", "THREADS_PER_CORE_MAX", "ConfigCall", "PrecisionType",
           "RunConfig", "apply_calls", "default_cache_dir"]
