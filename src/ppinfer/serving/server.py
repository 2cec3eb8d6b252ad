"""``ppinfer.serve()``: load a model once and serve :func:`create_app`'s app with uvicorn.

Stopping. The first SIGTERM or Ctrl-C stops accepting connections, lets every request in
flight finish (each is bounded by ``timeout``), runs the app's shutdown, and returns: the
command exits 0. A second one ends the process at once (exit 130). uvicorn's own handler
re-raises the signal after a graceful stop, which made the exit status "killed by SIGTERM";
here the signal is only a request to stop.

The listening socket is bound here, before uvicorn starts, so a port in use is one sentence
(:class:`ppinfer.ConfigError`) instead of uvicorn's log line and exit 1.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from typing import Any

from ppinfer.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"  # strangers reach the server only when --host says so
DEFAULT_PORT = 8080  # PaddleX's serving default
APP_OPTIONS = ("max_batch", "max_delay_ms", "max_queue", "timeout", "max_body_bytes",
               "allow_urls", "name")


def _imports():
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ConfigError(f"ppinfer serve needs FastAPI and uvicorn ({exc.name} is missing): "
                          "pip install 'ppinfer[serve]'.") from None
    return uvicorn


def serve(model: str | os.PathLike | None = None, *, engine: str | None = None,
          host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "warning",
          on_ready=None, **options: Any) -> None:
    """Serve ``model`` (``None``: the built-in model) until SIGTERM or Ctrl-C.

    ``options`` are :func:`ppinfer.load`'s (``precision``, ``cpu_threads``, ``top_k``,
    ``max_pixels``, ...) and :func:`ppinfer.serving.create_app`'s (``max_batch``,
    ``max_delay_ms``, ``max_queue``, ``timeout``, ``max_body_bytes``, ``allow_urls``,
    ``name``). ``on_ready(url)`` is called once the socket listens.
    """
    uvicorn = _imports()
    import ppinfer
    from ppinfer.serving.app import create_app

    app_kw = {k: options.pop(k) for k in APP_OPTIONS if k in options}
    options.setdefault("batch_size", app_kw.get("max_batch", 8))  # what the engine is built for
    sock = listen(host, port)
    try:
        predictor = ppinfer.load(model, engine=engine, **options)
        app = create_app(predictor, **app_kw)
        config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                                timeout_graceful_shutdown=app_kw.get("timeout", 30.0) + 5,
                                server_header=False)
        server = _server(config)
        url = f"http://{_url_host(sock)}:{sock.getsockname()[1]}"
        server.ready_message = (f"Serving {app.state.ppinfer.model_name} on "
                                f"{predictor.engine.name} at {url} (Ctrl-C to stop).")
        server.on_ready = (lambda: on_ready(url)) if on_ready else None
        server.run(sockets=[sock])
    finally:
        sock.close()


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"Cannot listen on {host}: {exc.strerror or exc}.") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = ": choose another --port" if exc.errno in (98, 48) else ""
        raise ConfigError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}){hint}.") \
            from None
    sock.set_inheritable(True)
    return sock


def _url_host(sock: socket.socket) -> str:
    host = sock.getsockname()[0]
    return f"[{host}]" if ":" in host else host


def _server(config):
    """uvicorn's Server, with ppinfer's meaning of the stop signals (see the module)."""
    import uvicorn

    class Server(uvicorn.Server):
        ready_message = ""
        on_ready = None

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                _say(self.ready_message)
                if self.on_ready is not None:
                    self.on_ready()

        def handle_exit(self, sig: int, frame) -> None:
            if self.should_exit:  # the second signal: no more waiting
                _say("Stopped without finishing the requests in flight.")
                os._exit(130)
            self.should_exit = True
            _say("Stopping: no new connections; finishing the requests in flight "
                 "(Ctrl-C again to stop at once).")

    return Server(config)


def _say(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
