"""``ppinfer serve --runner ray``: the local server's app on Ray Serve, in replicas.

The driver decides everything once (the model's files, the run settings, ``--engine auto``'s
choice) and hands that plan to the replicas; each builds one engine from the model's path
(never re-exporting it) and serves :func:`~ppinfer.serving.app.create_app`'s app through
``serve.ingress``. Ray Serve routes requests, restarts a replica that dies and, with
``autoscale``, adds and removes replicas. Without an address a local Ray is started and shut
down on exit; with one, the application is deleted from the cluster on exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ppinfer.errors import ConfigError

APP_NAME = "ppinfer"
SERVE_HINT = "--runner ray serves on Ray Serve: pip install 'ppinfer[ray]' (or 'ray[serve]')."
BUILD_REPORT_WAIT_S = 10.0  # replicas send their build time as they become ready


@dataclass(frozen=True)
class RayServeOptions:
    """Where and how many: ``address`` (None: a local Ray), a fixed number of ``replicas`` or
    ``autoscale`` = (min, max), and the CPUs each replica reserves (fractions are fine)."""

    address: str | None = None
    replicas: int = 1
    autoscale: tuple[int, int] | None = None
    replica_cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ConfigError("replicas must be at least 1.")
        if not self.replica_cpus > 0:
            raise ConfigError("replica_cpus must be more than 0.")
        if self.autoscale is not None:
            low, high = self.autoscale
            if not 1 <= low <= high:
                raise ConfigError(f"autoscale {low}:{high} needs 1 <= MIN <= MAX.")

    @property
    def most_replicas(self) -> int:
        return self.autoscale[1] if self.autoscale else self.replicas


def parse_autoscale(spec: str) -> tuple[int, int]:
    """``"MIN:MAX"`` as two whole numbers, 1 <= MIN <= MAX, else one sentence."""
    low, sep, high = spec.partition(":")
    if not (sep and low.strip().isdigit() and high.strip().isdigit()):
        raise ConfigError(f"--autoscale takes MIN:MAX replicas, such as 1:4, not {spec!r}.")
    bounds = int(low), int(high)
    if not 1 <= bounds[0] <= bounds[1]:
        raise ConfigError(f"--autoscale {spec} needs 1 <= MIN <= MAX.")
    return bounds


@dataclass
class RayServeReport:
    """What was deployed: the engine, the replicas, each one's engine build time."""

    engine: str
    model: str
    options: RayServeOptions
    engine_threads: int
    url: str
    build_seconds: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        opts = self.options
        count = (f"{opts.autoscale[0]} to {opts.autoscale[1]} replicas (autoscaled)"
                 if opts.autoscale else f"{opts.replicas} replica(s)")
        builds = ", ".join(f"{s:.2f}" for s in sorted(self.build_seconds.values())) or "-"
        return (f"Serving {self.model} on {self.engine} at {self.url} with Ray Serve: {count} "
                f"of {opts.replica_cpus:g} CPUs, {self.engine_threads} thread(s) each; engine "
                f"build s per replica: {builds}.")


def require_ray_serve():
    """Ray Serve, or the sentence saying how to install it."""
    try:
        from ray import serve
    except ImportError:
        raise ConfigError(SERVE_HINT) from None
    return serve


def application(plan, options: RayServeOptions, server_options: dict[str, Any], *,
                build_log: Any = None, replica: type | None = None):
    """The Serve application (``serve.run`` it on any cluster whose nodes see the model's
    path): one ingress deployment of :class:`EngineReplica` (or a subclass, ``replica``),
    the local server's app."""
    serve = require_ray_serve()
    from ppinfer.serving.ray_replica import EngineReplica

    replica = replica or EngineReplica

    max_queue = int(server_options.get("max_queue", 256))
    scaling: dict[str, Any] = {"num_replicas": options.replicas}
    if options.autoscale:
        low, high = options.autoscale
        scaling = {"autoscaling_config": {
            "min_replicas": low, "max_replicas": high, "initial_replicas": low,
            # a replica is busy enough when it holds a full batch
            "target_ongoing_requests": int(server_options.get("max_batch", 8))}}
    deployment = serve.deployment(
        serve.ingress()(replica), name="PPInferReplica",
        ray_actor_options={"num_cpus": options.replica_cpus},
        # each replica admits up to --max-queue requests (its batcher refuses beyond, 503);
        # Serve queues as many more in front of the replicas, then refuses with 503 too
        max_ongoing_requests=max_queue, max_queued_requests=max_queue,
        graceful_shutdown_timeout_s=float(server_options.get("timeout_s", 30.0)),
        **scaling,
    )
    return deployment.bind(plan=plan._replace(built=None), server_options=server_options,
                           build_log=build_log)


def deploy(plan, options: RayServeOptions, server_options: dict[str, Any], *,
           host: str = "127.0.0.1", port: int = 8080) -> RayServeReport:
    """Run the application on the Ray this process is connected to, HTTP on ``host:port``
    (Serve's proxy), and wait until its replicas are up; returns what was deployed."""
    import ray

    serve = require_ray_serve()
    from ppinfer.serving.ray_replica import BuildLog

    check_fits(options, float(ray.cluster_resources().get("CPU", 0)), local=not options.address)
    log = ray.remote(num_cpus=0)(BuildLog).remote()
    serve.start(http_options={"host": host, "port": port})
    try:
        serve.run(application(plan, options, server_options, build_log=log), name=APP_NAME,
                  route_prefix="/")
    except RuntimeError as exc:  # Serve's sentence names no cause: the replicas' error does
        raise replica_error(serve) or exc from None
    report = RayServeReport(plan.engine, plan.source.display_name, options,
                            plan.config.cpu_threads or 1, _served_url(host, port))
    deadline = time.monotonic() + BUILD_REPORT_WAIT_S
    wanted = options.autoscale[0] if options.autoscale else options.replicas
    while len(report.build_seconds) < wanted and time.monotonic() < deadline:
        report.build_seconds = ray.get(log.read.remote())
        time.sleep(0.05)
    return report


def _served_url(host: str, port: int) -> str:
    """Where Serve's proxy listens: a cluster whose Serve was already running keeps its own
    host and port (Serve applies http_options only when it starts), so ask it."""
    from ray.serve.context import _get_global_client

    try:
        config = _get_global_client().http_config
        host, port = config.host, config.port
    except Exception:  # noqa: BLE001 (a private API: the asked-for address is then said)
        pass
    return f"http://{host}:{port}/"


def replica_error(serve) -> Exception | None:
    """The ppinfer error a replica failed with (a model path missing on its node, ...), as
    ppinfer's own exception, from the deployment's status; None when there is none."""
    import re

    import ppinfer.errors

    app = serve.status().applications.get(APP_NAME)
    messages = [d.message for d in app.deployments.values()] if app else []
    found = re.findall(r"^ppinfer\.errors\.(\w+): (.+)$", "\n".join(messages), re.MULTILINE)
    if not found:
        return None
    name, sentence = found[-1]
    kind = getattr(ppinfer.errors, name, None)
    return kind(sentence) if isinstance(kind, type) else None


def check_fits(options: RayServeOptions, cluster_cpus: float, *, local: bool) -> None:
    """On a local Ray, replicas that cannot all start are refused in one sentence (a remote
    cluster may add nodes, so there it is left to Ray)."""
    needed = options.most_replicas * options.replica_cpus
    if local and needed > cluster_cpus + 1e-9:
        raise ConfigError(
            f"{options.most_replicas} replicas of {options.replica_cpus:g} CPUs need "
            f"{needed:g} CPUs, and this Ray has {cluster_cpus:g}: lower --replicas (or "
            "--autoscale's MAX) or --replica-cpus (fractions such as 0.5 are fine).")


def plan_for_replicas(model, engine: str | None, options: RayServeOptions,
                      load_options: dict[str, Any]):
    """:func:`ppinfer.api.predictor.plan_load` on the driver (``auto`` decided here, once),
    each engine's math threads set to the CPUs its replica reserves; checked as a local run
    would check it, before any Ray work starts."""
    import dataclasses

    from ppinfer.api.predictor import plan_load
    from ppinfer.runners.ray_runner import check_runnable

    threads = load_options.get("cpu_threads")
    if threads is None:  # the replica's CPUs; `auto` measures here with what this host has
        threads = max(1, round(options.replica_cpus))
        load_options = {**load_options, "cpu_threads": min(threads, os.cpu_count() or 1)}
    plan = plan_load(model, engine=engine, **load_options)
    check_runnable(plan.source, plan.config, plan.engine)
    config = dataclasses.replace(plan.config, cpu_threads=threads)  # a node may be bigger
    return plan._replace(config=config, built=None)


def serve_on_ray(model, *, host: str, port: int, engine: str | None,
                 options: RayServeOptions, server_options: dict[str, Any],
                 load_options: dict[str, Any],
                 on_ready: Callable[[RayServeReport, str], None] | None = None) -> None:
    """Deploy, serve until SIGTERM or Ctrl-C, then delete the application (its replicas
    finish what they hold) and stop the local Ray if this started one. Ray's notices go to
    stderr, as with predict --runner ray."""
    require_ray_serve()
    from ppinfer.runners.ray_runner import ray_session, unwrap_ray_errors

    plan = plan_for_replicas(model, engine, options, load_options)
    with contextlib.redirect_stdout(sys.stderr), _quiet_serve(), \
            ray_session(options.address, needs="ray.serve", hint=SERVE_HINT):
        from ray import serve
        from ray.serve.exceptions import RayServeException

        with _stop_signals() as stop:  # Ray's own SIGTERM handler would abort the process
            try:
                with unwrap_ray_errors():
                    report = deploy(plan, options, server_options, host=host, port=port)
                if on_ready is not None and not stop.is_set():
                    on_ready(report, report.url)
                while not stop.wait(0.5):
                    pass
            finally:
                # the replicas finish what they hold; a local Ray then goes with ray_session
                with contextlib.suppress(RayServeException):  # Serve never started
                    serve.delete(APP_NAME)


@contextlib.contextmanager
def _stop_signals():
    """An event SIGTERM or Ctrl-C sets (also while deploying: the stop comes right after);
    the previous handlers are back for the drain, so a second Ctrl-C interrupts it."""
    import signal
    import threading

    stop = threading.Event()
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in handled}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _quiet_serve:
    """Ray Serve logs every deployment step at INFO on the console; ppinfer says what was
    deployed in its own line, so only Serve's warnings get through (unless verbose)."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("ray.serve")
        self.level = self.logger.level
        from ppinfer.runtime.quiet import verbose

        if not verbose():
            self.logger.setLevel(logging.WARNING)

    def __exit__(self, *_: object) -> None:
        self.logger.setLevel(self.level)
