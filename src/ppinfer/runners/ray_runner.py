"""Batch prediction on Ray Data: the same results as a local run, on one machine or a cluster.

The pipeline: a dataset of paths -> decode + preprocess in ``map_batches`` tasks -> a pool of
:class:`~ppinfer.runners.ray_stages.PredictActor` actors, each holding one engine built once
-> results in input order. ppinfer schedules nothing itself; Ray does.

Resources: every task and actor reserves CPUs, and Ray starts only what fits. When the actors
reserve every CPU the decode tasks never start and the pipeline stalls (measured on a 2-CPU
machine with 2 actors of 1 CPU each). So a share of the cluster's CPUs is kept for decoding
(:func:`plan_resources`), the actors split the rest (fractions are fine), and each engine runs
as many math threads as its actor reserves.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ppinfer.config import RunConfig
from ppinfer.errors import ConfigError, PPInferError, RunnerError
from ppinfer.modelfiles.source import ModelSource
from ppinfer.pipeline.decode import DEFAULT_MAX_PIXELS
from ppinfer.pipeline.inputs import InputItem
from ppinfer.pipeline.postprocess import Result, name_base64, name_from_base64, printable
from ppinfer.predict import PredictSummary
from ppinfer.runners.ray_stages import PredictActor, decode_batch, engine_class

DECODE_TASK_CPUS = 0.5
"""CPUs one decode task reserves: two run side by side on the CPU kept for decoding."""
DECODE_BATCH = 16  # images per decode call (16 x 0.6 MB tensors at 224x224)
MAX_PATHS_PER_BLOCK = 64  # input rows per block: results (and the bar) arrive a block at a time
ACTOR_MAX_RESTARTS = 3  # an actor that dies is restarted this often, then the run fails
ACTOR_TASK_RETRIES = 3  # a batch whose actor died is resubmitted this often


@dataclass(frozen=True)
class RayOptions:
    """How to run on Ray: where (``address``: None starts a local Ray), how many actors, and how
    many CPUs each reserves (None: :func:`plan_resources` decides)."""

    address: str | None = None
    actors: int = 1
    actor_cpus: float | None = None


@dataclass(frozen=True)
class ResourcePlan:
    actors: int
    actor_cpus: float
    engine_threads: int
    decode_cpus: float  # kept free for decode tasks


def plan_resources(cluster_cpus: float, actors: int, actor_cpus: float | None = None,
                   cpu_threads: int | None = None) -> ResourcePlan:
    """Share ``cluster_cpus`` between decoding and ``actors`` predictor actors.

    A quarter of the CPUs, at least one, stays free for decode tasks; the actors split the
    rest (a fraction each when there are more actors than CPUs). Each engine gets as many math
    threads as its actor reserves, rounded, at least one (``cpu_threads`` overrides).
    """
    if actors < 1:
        raise ConfigError("--actors must be at least 1.")
    decode_cpus = max(DECODE_TASK_CPUS, min(max(1.0, cluster_cpus / 4), cluster_cpus / 2))
    if actor_cpus is None:
        actor_cpus = max(0.01, math.floor(100 * (cluster_cpus - decode_cpus) / actors) / 100)
    elif actor_cpus <= 0:
        raise ConfigError("--actor-cpus must be more than 0.")
    threads = cpu_threads or max(1, round(actor_cpus))
    return ResourcePlan(actors, actor_cpus, threads, decode_cpus)


def check_fits(plan: ResourcePlan, cluster_cpus: float) -> str | None:
    """Why ``plan`` cannot make progress on ``cluster_cpus`` CPUs (None when it can)."""
    needed = plan.actors * plan.actor_cpus + DECODE_TASK_CPUS
    if needed <= cluster_cpus + 1e-9:
        return None
    return (f"{plan.actors} actors of {plan.actor_cpus:g} CPUs plus {DECODE_TASK_CPUS:g} for "
            f"decoding need {needed:g} CPUs, and this Ray cluster has {cluster_cpus:g}: lower "
            "--actors or --actor-cpus (fractions such as 0.5 are fine).")


RAY_DATA_HINT = "--runner ray needs Ray Data: pip install 'ppinfer[ray]' (or 'ray[data]')."


@contextlib.contextmanager
def ray_session(address: str | None = None, *, needs: str = "ray.data",
                hint: str = RAY_DATA_HINT) -> Iterator[Any]:
    """Ray for the duration of a run: the one already initialised in this process, else a
    connection to ``address``, else a new local Ray that is shut down afterwards. ``needs``
    is the Ray library the run uses (``hint`` says how to install it when it cannot load)."""
    import importlib

    try:
        import ray

        # plain `pip install ray` lacks Ray Data's pandas and pyarrow, Ray Serve's grpcio
        importlib.import_module(needs)
    except ImportError:
        raise ConfigError(hint) from None
    if ray.is_initialized():
        yield ray
        return
    if address:
        check_reachable(address)
    from ppinfer.runtime.quiet import captured_output, verbose

    if not verbose():
        # Ray's C++ side logs notices as errors on stderr on every run ("E ... core_worker.cc:
        # ... constructor arguments in the object store": Ray Data's own actors); only its fatal
        # lines get through, and the line saying so is printed inside ray.init (captured).
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        with captured_output():
            ray.init(
                address=address or "local", include_dashboard=False,
                # Workers' prints (Paddle's logs) would mix into --json lines on stdout.
                log_to_driver=False, logging_level=logging.ERROR,
                # ppinfer importable in workers of a local Ray, even when run from a source tree
                runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}}
                if address is None else None,
            )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise ConfigError(f"Cannot start or reach {where}: {first_line(exc)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


RAY_CONNECT_TIMEOUT_S = 10.0
#: HTTP/2's client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS, Ray Client's
#: server) answers with a SETTINGS frame of its own at once.
HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
HTTP2_SETTINGS = 4  # frame type, the fourth byte of a frame's header


def check_reachable(address: str, timeout: float | None = None) -> None:
    """Fail in one sentence when a ``host:port`` (or ``ray://host:port``) head cannot be
    reached, or answers but not as Ray: Ray itself retries an unreachable address for
    minutes, and waited 10 minutes on an open port that was not Ray's. Other forms
    (``auto``) are left to Ray."""
    import socket

    timeout = RAY_CONNECT_TIMEOUT_S if timeout is None else timeout
    target = _host_port(address)
    if target is None:
        return
    try:
        conn = socket.create_connection(target, timeout=timeout)
    except OSError as exc:
        raise ConfigError(
            f"Cannot reach the Ray cluster at {address}: {exc.strerror or exc}. Check the "
            "address (the head node's `ray start --head` prints it) and that the port is open."
        ) from None
    with conn:
        if _tls() or _answers_grpc(conn, timeout):
            return
    raise ConfigError(
        f"{address} answers, but not as a Ray cluster (no gRPC reply within {timeout:g} s): "
        "check the address and port (`ray start --head` prints them; Ray Client listens on "
        "ray://HEAD:10001)."
    )


def _host_port(address: str) -> tuple[str, int] | None:
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or "://" in rest or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def _tls() -> bool:
    """Ray with TLS (RAY_USE_TLS): its handshake is not cleartext HTTP/2, so not probed."""
    return os.environ.get("RAY_USE_TLS", "0").strip().lower() in ("1", "true", "yes")


def _answers_grpc(conn, timeout: float) -> bool:
    """Whether the server on ``conn`` speaks HTTP/2, as gRPC does: it answers the client
    preface with a SETTINGS frame within ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    header = b""
    try:
        conn.sendall(HTTP2_HELLO)
        while len(header) < 9:
            conn.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = conn.recv(9 - len(header))
            if not chunk:
                return False
            header += chunk
    except OSError:  # a timeout included
        return False
    return header[3] == HTTP2_SETTINGS


def results_dataset(source: ModelSource, config: RunConfig, items: Sequence[InputItem], *,
                    engine: str | type = "analysis", actors: int = 1,
                    actor_cpus: float | None = None, cpu_threads: int | None = None,
                    max_pixels: int = DEFAULT_MAX_PIXELS):
    """The Ray Dataset of results (lazy; Ray must be initialised), for composing pipelines.

    Columns: ``index`` (position in ``items``), ``file_name``, ``file_name_base64`` (the
    name's bytes when it is not UTF-8, else None), ``class_ids``, ``scores``,
    ``label_names``, ``error`` (None when predicted), then per-row diagnostics ``worker``,
    ``build_seconds`` and the stage times. Rows come in input order.
    """
    import pyarrow as pa
    import ray
    import ray.data

    cluster_cpus = float(ray.cluster_resources().get("CPU", 0))
    plan = plan_resources(cluster_cpus, actors, actor_cpus, cpu_threads)
    config = replace(config, cpu_threads=plan.engine_threads)
    table = pa.table({
        "index": pa.array(range(len(items)), pa.int64()),
        "file_name": pa.array([printable(item.path) for item in items], pa.string()),
        # "" for a UTF-8 name (None in the results): Ray's numpy batches turn nulls into NaN
        "file_name_base64": pa.array([name_base64(item.path) or "" for item in items],
                                     pa.string()),
        "path": pa.array([os.fsencode(os.path.abspath(item.path)) for item in items],
                         pa.binary()),
        "error": pa.array([item.error or "" for item in items], pa.string()),
    })
    per_block = max(1, min(MAX_PATHS_PER_BLOCK, math.ceil(len(items) / max(4 * cluster_cpus, 1))))
    blocks = [table.slice(start, per_block) for start in range(0, len(items), per_block)]
    ds = ray.data.from_arrow(blocks or [table])
    ds.context.execution_options.preserve_order = True  # results in input order
    ds.context.enable_progress_bars = False  # ppinfer draws its own bar
    ds.context.print_on_execution_start = False
    ds = ds.map_batches(
        decode_batch, batch_size=min(DECODE_BATCH, per_block), batch_format="numpy",
        num_cpus=DECODE_TASK_CPUS,
        fn_kwargs={"preprocess": source.preprocess, "input_shape": tuple(source.input_shape),
                   "max_pixels": max_pixels},
    )
    with warnings.catch_warnings():
        # Ray 2.60 takes max_restarts only as a (deprecated) extra remote argument; without it
        # an actor that crashes on every attempt would be restarted forever.
        warnings.simplefilter("ignore", DeprecationWarning)
        return ds.map_batches(
            PredictActor, batch_size=config.batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan.actors), num_cpus=plan.actor_cpus,
            fn_constructor_kwargs={"engine": engine, "source": source, "config": config},
            max_restarts=ACTOR_MAX_RESTARTS, max_task_retries=ACTOR_TASK_RETRIES,
        )


def quiet_ray_data() -> None:
    """Ray Data logs its progress at INFO on the console; ppinfer reports in its own lines, so
    only Ray Data's errors reach the console (its log file under the Ray session keeps all)."""
    import ray.data  # noqa: F401  (configures the ray.data logger on first import)

    for handler in logging.getLogger("ray.data").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            handler.setLevel(logging.ERROR)


def check_runnable(source: ModelSource, config: RunConfig, engine: str | type) -> None:
    """What a local run would refuse before building (unknown engine, a precision it would not
    run, a model layout it cannot load) is refused here too, before any Ray work starts."""
    from ppinfer.engines.base import precision_problem

    runner = engine_class(engine)(source, config)
    problem = precision_problem(type(runner), source, runner.config.precision)
    if problem:
        raise ConfigError(problem)
    runner.check_layout()


@dataclass
class RayRunReport:
    """What a Ray run did besides its results: the plan, each actor's engine build time (by
    ``host:pid``), how many inputs failed."""

    plan: ResourcePlan | None = None
    build_seconds: dict[str, float] = field(default_factory=dict)
    errors: int = 0


def planned_resources(ray: Any, options: RayOptions, cpu_threads: int | None) -> ResourcePlan:
    """The plan for the connected cluster; on a local Ray one that cannot progress is refused
    (a remote cluster may autoscale, so there it is left to Ray)."""
    cluster_cpus = float(ray.cluster_resources().get("CPU", 0))
    plan = plan_resources(cluster_cpus, options.actors, options.actor_cpus, cpu_threads)
    problem = check_fits(plan, cluster_cpus)
    if problem and options.address is None:
        raise ConfigError(problem)
    return plan


@contextlib.contextmanager
def planned_dataset(source: ModelSource, config: RunConfig, items: Sequence[InputItem],
                    engine: str | type, options: RayOptions, cpu_threads: int | None,
                    max_pixels: int, report: RayRunReport) -> Iterator[Any]:
    """Within a Ray session: the results dataset for ``items``, its resources planned (into
    ``report``) after the engine was checked here on the driver."""
    check_runnable(source, config, engine)
    with ray_session(options.address) as ray:
        quiet_ray_data()
        report.plan = planned_resources(ray, options, cpu_threads)
        yield results_dataset(source, config, items, engine=engine, actors=options.actors,
                              actor_cpus=report.plan.actor_cpus, cpu_threads=cpu_threads,
                              max_pixels=max_pixels)


def predict_on_ray(source: ModelSource, config: RunConfig, items: Sequence[InputItem],
                   on_result: Callable[[Result], None], *, engine: str | type = "analysis",
                   options: RayOptions = RayOptions(), cpu_threads: int | None = None,
                   max_pixels: int = DEFAULT_MAX_PIXELS,
                   on_batch: Callable[[int], None] | None = None,
                   report: RayRunReport | None = None) -> PredictSummary:
    """Predict every item on Ray, calling ``on_result`` per image in input order, as
    :func:`ppinfer.predict.run_predictions` does locally; returns the same summary."""
    summary = PredictSummary()
    report = report if report is not None else RayRunReport()
    with planned_dataset(source, config, items, engine, options, cpu_threads, max_pixels,
                         report) as ds, unwrap_ray_errors(), warnings.catch_warnings():
        # "fewer input blocks than actors" for short runs: harmless, not the user's concern
        warnings.simplefilter("ignore", UserWarning)
        for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
            _consume(batch, summary, report, on_result)
            if on_batch is not None:
                on_batch(batch.num_rows)
    return summary


def _consume(batch, summary: PredictSummary, report: RayRunReport,
             on_result: Callable[[Result], None]) -> None:
    rows = batch.to_pylist()
    timer = summary.timer
    for row in rows:
        report.build_seconds[row["worker"]] = row["build_seconds"]
        for stage in ("preprocess", "inference", "postprocess"):
            timer.seconds[stage] += row[f"{stage}_seconds"]
        if row["error"] is not None:
            summary.errors += 1
            report.errors += 1
        else:
            summary.results += 1
            timer.images += 1
        on_result(row_to_result(row))


def row_to_result(row: dict[str, Any]) -> Result:
    """A results-dataset row as the local run's :class:`Result` (so the JSON line is the same:
    a name that is not UTF-8 comes back with its bytes)."""
    raw = row.get("file_name_base64")
    name = name_from_base64(raw) if raw else row["file_name"]
    if row["error"] is not None:
        return Result(name, error=row["error"])
    return Result(name, row["class_ids"], row["scores"], row["label_names"])


@contextlib.contextmanager
def unwrap_ray_errors() -> Iterator[None]:
    """A ppinfer error raised in a worker (e.g. a model missing on a node) comes back wrapped
    in Ray's exceptions: re-raise it as itself; other failures become one sentence."""
    try:
        yield
    except Exception as exc:
        cause = _ppinfer_cause(exc)
        if cause is exc:
            raise
        if cause is not None:
            raise cause from None
        raise RunnerError(f"The Ray run failed: {first_line(exc)}") from exc


def _ppinfer_cause(exc: BaseException) -> PPInferError | None:
    """The first ppinfer error down ``exc``'s chain. Ray's RayTaskError is made an instance of
    its cause's class too, but its message is a traceback: its ``cause`` is what was raised."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            exc = cause
            continue
        if isinstance(exc, PPInferError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
