"""``ppinfer.serve()`` and ``ppinfer serve``: load the model once, host the app with uvicorn.

The first SIGTERM or Ctrl-C stops accepting connections, lets the requests in flight finish
(the app's lifespan then drains the batcher) and exits 0; a second one exits 130 at once.
The listening socket is bound before the model loads, so a port in use is one sentence in a
moment, not a log line after the model's start-up. Binds 127.0.0.1 unless told otherwise: a
server strangers can reach is a choice.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from typing import Any

from ppinfer.errors import ConfigError

INSTALL_HINT = "ppinfer serve needs its extra: pip install 'ppinfer[serve]'."
SERVE_OPTIONS = ("max_batch", "max_delay_ms", "max_queue", "timeout_s", "max_body_bytes", "name",
                 "allow_urls")


def serve(model: str | os.PathLike | None = None, *, host: str = "127.0.0.1", port: int = 8080,
          engine: str | None = None, on_ready=None, runner: str = "local",
          ray_address: str | None = None, replicas: int = 1,
          autoscale: tuple[int, int] | str | None = None, replica_cpus: float = 1.0,
          **options: Any) -> None:
    """Serve ``model`` (default: the built-in model) until SIGTERM or Ctrl-C. ``options``:
    :func:`ppinfer.load`'s options and the server's (``max_batch``, ``max_delay_ms``,
    ``max_queue``, ``timeout_s``, ``max_body_bytes``, ``name``, ``allow_urls``).
    ``on_ready(served, url)`` is called once the model is loaded and the socket listens.

    ``runner="ray"`` serves the same app on Ray Serve instead: ``replicas`` engines (or
    ``autoscale=(MIN, MAX)``), each reserving ``replica_cpus``, on the cluster at
    ``ray_address`` (None: a local Ray, stopped on exit); Ray Serve's proxy listens, and
    ``served`` is what was deployed."""
    if runner not in ("local", "ray"):
        raise ConfigError(f"Unknown runner {runner!r}: use 'local' or 'ray'.")
    uvicorn = _require_serving_stack()
    server_options = {k: options.pop(k) for k in SERVE_OPTIONS if k in options}
    check_server_options(**server_options)
    if runner == "ray":
        return _serve_on_ray(model, host=host, port=port, engine=engine, on_ready=on_ready,
                             ray_address=ray_address, replicas=replicas, autoscale=autoscale,
                             replica_cpus=replica_cpus, server_options=server_options,
                             load_options=options)
    from ppinfer.api.predictor import load
    from ppinfer.serving.app import create_app

    sock = listen(host, port)
    try:
        predictor = load(model, engine=engine, **options)
        app = create_app(predictor, **server_options)
        config = uvicorn.Config(app, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=server_options.get("timeout_s", 30.0))
        server = _server_class(uvicorn)(config)
        if on_ready is not None:
            on_ready(predictor, _url(sock))
        server.run(sockets=[sock])
    finally:
        sock.close()


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port), or one sentence."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"Cannot listen on {host}: {getattr(exc, 'strerror', None) or exc}.") \
            from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = ": choose another --port" if exc.errno in (48, 98) else ""
        raise ConfigError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}){hint}.") \
            from None
    return sock


def _serve_on_ray(model, *, autoscale, ray_address, replicas, replica_cpus, **kw) -> None:
    from ppinfer.serving.ray_host import RayServeOptions, parse_autoscale, serve_on_ray

    if isinstance(autoscale, str):
        autoscale = parse_autoscale(autoscale)
    options = RayServeOptions(address=ray_address, replicas=replicas,
                              autoscale=tuple(autoscale) if autoscale else None,
                              replica_cpus=replica_cpus)
    if not ray_address:  # a local Ray's proxy binds here: a port in use is said before loading
        listen(kw["host"], kw["port"]).close()
    serve_on_ray(model, options=options, **kw)


def _server_class(uvicorn):
    """uvicorn's Server, ending in exit status 0 after a graceful stop (uvicorn raises the
    signal again once it has drained, so the process would end killed by SIGTERM, -15), and
    at once with 130 on a second signal."""
    import signal
    import threading

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield  # first signal: stop accepting, drain; a second Ctrl-C: now
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        def handle_exit(self, sig, frame) -> None:
            if self.should_exit:  # the second signal: no more waiting
                _say("Stopped without finishing the requests in flight.")
                os._exit(130)
            self.should_exit = True
            _say("Stopping: no new connections; finishing the requests in flight "
                 "(Ctrl-C again to stop at once).")

    return Server


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def check_server_options(**options: Any) -> None:
    """One sentence for a limit that makes no sense, before the model is loaded."""
    for name in ("max_batch", "max_queue", "max_body_bytes"):
        if name in options and int(options[name]) < 1:
            raise ConfigError(f"{name} must be at least 1.")
    for name in ("max_delay_ms", "timeout_s"):
        if name in options and not float(options[name]) >= 0:
            raise ConfigError(f"{name} must be 0 or more.")


def _require_serving_stack():
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return uvicorn
