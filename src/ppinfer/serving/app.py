"""``create_app(predictor, ...)``: the one ASGI app every host runs.

uvicorn hosts it for ``ppinfer serve``; a user mounts it in their own FastAPI service; a Ray
Serve replica can wrap it with ``serve.ingress``. So everything that makes it safe to expose
lives here, not in a host's settings: the body limit, admission (``max_queue``), the time
limit, the batcher and its start and drain. The batcher starts in the lifespan, or on the
first request where the host runs no lifespan (Starlette runs none for a mounted app).

Routes are plain Starlette endpoints taking the raw request: each protocol parses its own
body, and no model validation runs per request.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from ppinfer.serving import paddlex, page, plain, v2
from ppinfer.serving.metrics import Metrics
from ppinfer.serving.state import DEFAULT_MAX_BODY_BYTES, ServeOptions, ServingState


def create_app(predictor, *, max_batch: int = 8, max_delay_ms: float = 5.0,
               max_queue: int = 256, timeout: float = 30.0,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, allow_urls: bool = False,
               name: str | None = None) -> FastAPI:
    """The ASGI app serving ``predictor`` (from :func:`ppinfer.load`).

    ``max_batch`` images at most per engine call, gathered for at most ``max_delay_ms``;
    ``max_queue`` requests at most inside the app (one more: 503 with ``Retry-After``);
    ``timeout`` seconds at most per request (504); bodies over ``max_body_bytes`` refused
    before they are read (413); ``allow_urls`` lets PaddleX's ``image`` be a URL the server
    fetches; ``name`` is the model's name in ``/v2/models/{name}`` (default: the card's).
    Raises :class:`ppinfer.ConfigError` for an impossible setting.
    """
    options = ServeOptions(max_batch=max_batch, max_delay_ms=max_delay_ms, max_queue=max_queue,
                           timeout_s=timeout, max_body_bytes=max_body_bytes,
                           allow_urls=allow_urls, name=name)
    metrics = Metrics()
    state = ServingState(predictor, options, metrics)
    metrics.watch(state.batcher.queue_depth, lambda: state.batcher.admitted)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state.batcher.start()
        try:
            yield
        finally:
            await state.close()  # every admitted request is answered first

    app = FastAPI(title=f"ppinfer: {state.model_name}", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.ppinfer = state
    _add_routes(app)
    app.add_middleware(_Counted, metrics=metrics)
    return app


def _add_routes(app: FastAPI) -> None:
    get, post = ["GET"], ["POST"]
    routes = [
        ("/", page.page, get),
        ("/predict", plain.predict, post),
        (paddlex.INFER_PATH, paddlex.infer, post),
        ("/health", paddlex.health, get),
        ("/metrics", _metrics, get),
        ("/v2", v2.server_metadata, get),
        ("/v2/health/live", v2.live, get),
        ("/v2/health/ready", v2.ready, get),
        ("/v2/models/{name}", v2.model_metadata, get),
        ("/v2/models/{name}/ready", v2.model_ready, get),
        ("/v2/models/{name}/infer", v2.infer, post),
        ("/v2/models/{name}/versions/{version}", v2.model_metadata, get),
        ("/v2/models/{name}/versions/{version}/ready", v2.model_ready, get),
        ("/v2/models/{name}/versions/{version}/infer", v2.infer, post),
    ]
    for path, endpoint, methods in routes:
        app.add_route(path, endpoint, methods=methods)


async def _metrics(request: Request) -> Response:
    body, content_type = request.app.state.ppinfer.metrics.exposition()
    return Response(body, media_type=content_type)


class _Counted:
    """ASGI middleware: :meth:`Metrics.middleware` in the class form Starlette stacks."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = metrics.middleware(app)

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)
