"""``ppinfer serve``: one model over HTTP (extra ``.[serve]``: FastAPI, uvicorn).

- :mod:`~ppinfer.serving.app`: ``create_app(predictor, ...)``, the ASGI app every host runs
- :mod:`~ppinfer.serving.state`: what the app holds; the one path from bytes to a result
- :mod:`~ppinfer.serving.batcher`: the dynamic batcher (asyncio; reusable in a Ray replica)
- :mod:`~ppinfer.serving.paddlex`, :mod:`~ppinfer.serving.v2`, :mod:`~ppinfer.serving.plain`:
  the three ways in (PaddleX's contract, KServe v2 / Triton, a raw file)
- :mod:`~ppinfer.serving.bodies`, :mod:`~ppinfer.serving.fetch`: bounded bodies, opt-in URLs
- :mod:`~ppinfer.serving.metrics`, :mod:`~ppinfer.serving.page`: ``/metrics`` and ``/``
- :mod:`~ppinfer.serving.server`: ``serve()``, uvicorn with a graceful drain

Docs: docs/serving.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:  # FastAPI and uvicorn load with the first use
    if name == "create_app":
        from ppinfer.serving.app import create_app

        return create_app
    if name == "serve":
        from ppinfer.serving.server import serve

        return serve
    raise AttributeError(f"module 'ppinfer.serving' has no attribute {name!r}")
