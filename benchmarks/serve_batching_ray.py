"""Batching inside a Ray Serve replica: ppinfer's own batcher against Ray Serve's @serve.batch.

    python benchmarks/serve_batching_ray.py [--concurrency 1,4,16] [--seconds 5] [--json OUT]

One local Ray; one replica of ``ppinfer serve --runner ray`` (every core, the built-in model
on analysis, max batch 8, 5 ms delay) deployed twice in turn: as shipped (the app's own
:class:`~ppinfer.serving.batcher.Batcher`), then with the app's batcher swapped for a function
decorated with ``@serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)`` that runs the same
engine call in the same single engine thread. Everything else (routes, decode, the engine) is
the same object. The closed-loop client is serve_load.py's.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import _cpu_flags, _shipped_photo, closed_loop, free_port  # noqa: E402

from ppinfer.serving.ray_replica import EngineReplica  # noqa: E402

MAX_BATCH, DELAY_S = 8, 0.005


class ServeBatchBatcher:
    """The Batcher's interface over @serve.batch: the same engine call, in one thread."""

    def __init__(self, infer) -> None:
        from ray import serve

        pool = ThreadPoolExecutor(1, thread_name_prefix="ppinfer-engine")
        self.depth = 0

        @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=DELAY_S)
        async def run(tensors: list) -> list:
            loop = asyncio.get_running_loop()
            scores = await loop.run_in_executor(pool, infer, np.concatenate(tensors))
            return list(scores)

        self._run = run

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def submit(self, tensor):
        return await self._run(tensor)


class ServeBatchReplica(EngineReplica):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        context = self.ppinfer_app.state.ppinfer
        context.batcher = ServeBatchBatcher(context._infer)


def measure(replica, body: bytes, levels: list[int], seconds: float) -> list[dict]:
    from ray import serve

    from ppinfer.serving.ray_host import APP_NAME, RayServeOptions, application, plan_for_replicas

    cores = os.cpu_count() or 1
    options = RayServeOptions(replicas=1, replica_cpus=cores)
    plan = plan_for_replicas(None, "analysis", options, {})
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(application(plan, options, {"max_batch": MAX_BATCH, "max_delay_ms": 5},
                          replica=replica), name=APP_NAME, route_prefix="/")
    rows = [asyncio.run(closed_loop(f"http://127.0.0.1:{port}/predict", [body], c, seconds))
            for c in levels]
    serve.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    import ray

    levels = [int(c) for c in args.concurrency.split(",")]
    body = _shipped_photo().read_bytes()
    ray.init(address="local", include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cpu_flags": _cpu_flags(), "cores": os.cpu_count(), "seconds": args.seconds,
              "batchers": {}}
    try:
        for name, replica in (("ppinfer Batcher", EngineReplica),
                              ("@serve.batch", ServeBatchReplica)):
            rows = measure(replica, body, levels, args.seconds)
            report["batchers"][name] = rows
            for row in rows:
                print(f"{name:16} c={row['concurrency']:<3} {row['rps']:7.1f} req/s  "
                      f"p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  errors {row['errors']}",
                      flush=True)
    finally:
        ray.shutdown()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
