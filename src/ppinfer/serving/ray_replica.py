"""What runs inside a Ray Serve replica: one engine, built once, behind the local server's app.

The replica class is plain Python; :mod:`ppinfer.serving.ray_host` wraps it with
``serve.ingress`` and ``serve.deployment`` on the driver. Its app is :func:`create_app`'s, the
same object ``ppinfer serve`` hosts with uvicorn, so every route, schema, error and limit is
the local server's, and batching happens inside each replica in that app's own batcher.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any


class EngineReplica:
    """Builds the engine named by the driver's plan from the model's path (never exporting
    it: every node sees the files at that path), then the app around it. The build time is
    sent to ``build_log`` (an actor on the driver's side) so the driver can report it."""

    def __init__(self, *, plan: Any, server_options: dict[str, Any],
                 build_log: Any = None) -> None:
        from ppinfer.api.predictor import Predictor
        from ppinfer.runners.ray_stages import check_model_on_this_node, engine_class
        from ppinfer.serving.app import create_app

        check_model_on_this_node(plan.source)
        start = time.perf_counter()
        engine = engine_class(plan.engine)(plan.source, plan.config)
        engine.ensure_built()
        self.build_seconds = time.perf_counter() - start
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        predictor = Predictor(engine, max_pixels=plan.max_pixels,
                              max_image_bytes=plan.max_image_bytes)
        self.ppinfer_app = create_app(predictor, **server_options)
        if build_log is not None:
            build_log.record.remote(self.worker, self.build_seconds)

    def __serve_build_asgi_app__(self):
        return self.ppinfer_app


class BuildLog:
    """A small actor the replicas tell their engine build times to (by ``host:pid``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def record(self, worker: str, seconds: float) -> None:
        self.seconds[worker] = seconds

    def read(self) -> dict[str, float]:
        return dict(self.seconds)
