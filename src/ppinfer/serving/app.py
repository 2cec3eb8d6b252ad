"""The ASGI app: one FastAPI application holding one engine, built once.

``create_app(predictor, **options)`` is the whole server: routes, limits, batching, metrics and
the start/drain lifespan live here, so uvicorn (``ppinfer serve``) or a user's own FastAPI
service (``app.mount("/classify", create_app(...))``) host the same thing.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from ppinfer.serving.context import ServeOptions, ServingContext


class BodyTooLarge(Exception):
    pass


class GuardMiddleware:
    """Pure ASGI: refuse a body over the limit with 413 before reading it whole (from its
    Content-Length, else while it streams), and count every request for /metrics."""

    def __init__(self, app, context: ServingContext) -> None:
        self.app, self.context = app, context

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.context.options.max_body_bytes
        started, status = time.perf_counter(), [500]
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return self._count(scope, 413, started)
        seen = [0]

        async def counted_receive():
            message = await receive()
            seen[0] += len(message.get("body", b""))
            if seen[0] > limit:
                raise BodyTooLarge()
            return message

        async def watched_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:
            status[0] = 413
            await _too_large(send, limit)
        self._count(scope, status[0], started)

    def _count(self, scope, status: int, started: float) -> None:
        route = scope.get("route")
        name = getattr(route, "path", None) or "other"
        if name != "/metrics":
            self.context.metrics.observe(name, status, time.perf_counter() - started)


async def _too_large(send, limit: int) -> None:
    import json

    body = json.dumps({"error": f"The request body is over the limit of {limit} bytes: send "
                                "a smaller image (or raise --max-body-bytes)."}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(predictor, **options: Any):
    """The ASGI app serving ``predictor`` (from :func:`ppinfer.load`). ``options``: max_batch,
    max_delay_ms, max_queue, timeout_s, max_body_bytes, name, allow_urls."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    from ppinfer.serving import paddlex, page, plain, v2

    context = ServingContext(predictor, ServeOptions(**options))

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await context.start()
        try:
            yield
        finally:
            await context.stop()  # uvicorn stopped accepting; finish what is in flight

    app = FastAPI(title="ppinfer", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.ppinfer = context

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, media_type = context.metrics.render()
        return Response(body, media_type=media_type)

    for protocol in (paddlex, v2, plain, page):
        protocol.add_routes(app, context)
    app.add_middleware(GuardMiddleware, context=context)
    return app
