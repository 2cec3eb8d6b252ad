"""Serving: the model behind HTTP (``ppinfer serve``, ``ppinfer.serve()``).

- :mod:`~ppinfer.serving.app`: ``create_app(predictor, ...)``, the ASGI app (limits, metrics,
  lifespan), to run with uvicorn or mount in your own FastAPI service
- :mod:`~ppinfer.serving.batcher`: dynamic batching, one engine call per group of requests
- :mod:`~ppinfer.serving.context`: what the routes share; an image's bytes to its result
- protocols: :mod:`~ppinfer.serving.paddlex` (``/image-classification``),
  :mod:`~ppinfer.serving.v2` (KServe v2 / Triton), :mod:`~ppinfer.serving.plain`
  (``/predict``), :mod:`~ppinfer.serving.page` (``/``)
- :mod:`~ppinfer.serving.server`: hosting with uvicorn, signals and drain

Importing this package imports neither FastAPI nor Paddle.
"""

from __future__ import annotations

from typing import Any


def create_app(predictor, **options: Any):
    """The ASGI app serving ``predictor`` (see :func:`ppinfer.serving.app.create_app`)."""
    from ppinfer.serving.app import create_app as build

    return build(predictor, **options)


__all__ = ["create_app"]
