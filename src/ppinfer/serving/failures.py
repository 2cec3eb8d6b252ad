"""What a request's failure is in HTTP: status, one sentence, headers. Every protocol wraps it
in its own envelope."""

from __future__ import annotations

import asyncio

from ppinfer.errors import ImageError, PPInferError
from ppinfer.serving.batcher import QueueFull

RETRY_AFTER_S = 1


def describe(exc: BaseException, timeout_s: float) -> tuple[int, str, dict[str, str]]:
    """(status, sentence, headers) for what ``ServingContext.classify`` raised."""
    if isinstance(exc, ImageError):
        return 400, str(exc), {}
    if isinstance(exc, QueueFull):
        return (503, f"The server is busy ({exc}): retry in {RETRY_AFTER_S} s.",
                {"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return 504, f"The request waited longer than the server's timeout of {timeout_s:g} s.", {}
    if isinstance(exc, PPInferError):
        return 500, f"The model could not run this image: {exc}", {}
    raise exc


CAUGHT = (ImageError, QueueFull, asyncio.TimeoutError, TimeoutError, PPInferError)
