"""``GET /metrics``: Prometheus counters and histograms, one registry per app.

A registry of the app's own (not prometheus_client's global one), so two apps in one process
(tests, a service mounting two models) never share or clash over series. Routes are labelled
by their template (``/v2/models/{name}/infer``), never by the raw path, so a stranger's URLs
cannot grow the series without bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256)

# path -> route label; anything else is "other"
ROUTES = {
    "/": "/", "/predict": "/predict", "/image-classification": "/image-classification",
    "/health": "/health", "/metrics": "/metrics", "/v2": "/v2",
    "/v2/health/live": "/v2/health/live", "/v2/health/ready": "/v2/health/ready",
}


def route_label(path: str) -> str:
    if path in ROUTES:
        return ROUTES[path]
    if path.startswith("/v2/models/"):
        rest = path[len("/v2/models/"):].split("/")[1:]
        label = "/v2/models/{name}"
        if rest[:1] == ["versions"] and len(rest) >= 2:
            label, rest = label + "/versions/{version}", rest[2:]
        if rest in (["infer"], ["ready"]):
            return f"{label}/{rest[0]}"
        return label if not rest else "other"
    return "other"


class Metrics:
    """The app's series, and the ASGI middleware that counts every request."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("ppinfer_requests", "HTTP requests answered, by route and "
                                "status.", ("route", "status"), registry=self.registry)
        self.latency = Histogram("ppinfer_request_seconds", "Time from a request's arrival to "
                                 "its answer.", ("route",), buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.batch_size = Histogram("ppinfer_batch_size", "Images per engine call.",
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue = Gauge("ppinfer_queue_depth", "Images waiting for the engine.",
                           registry=self.registry)
        self.in_flight = Gauge("ppinfer_requests_in_flight", "Requests admitted and not yet "
                               "answered (at most --max-queue).", registry=self.registry)

    def watch(self, queue_depth: Callable[[], float], in_flight: Callable[[], float]) -> None:
        self.queue.set_function(queue_depth)
        self.in_flight.set_function(in_flight)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def middleware(self, app):
        """Wrap the ASGI ``app``: count each HTTP request by route and final status."""

        async def counted(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            start = time.perf_counter()
            status = [500]  # an exception before any answer is a 500 the server sends

            async def send_status(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                path, root = scope.get("path", ""), scope.get("root_path", "")
                if root and path.startswith(root):  # an app mounted under a prefix
                    path = path[len(root):]
                route = route_label(path)
                self.requests.labels(route, str(status[0])).inc()
                self.latency.labels(route).observe(time.perf_counter() - start)

        return counted
