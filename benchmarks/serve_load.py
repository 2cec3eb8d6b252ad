"""Load on `ppinfer serve` against the limits: a closed-loop async client on loopback.

    python benchmarks/serve_load.py [--model DIR] [--engine analysis] [--photos DIR]
        [--concurrency 1,4,16,64] [--seconds 5] [--json OUT]

Side by side in one run, each in a process of its own on a free 127.0.0.1 port:

- ``ppinfer serve`` (dynamic batching, ``--max-batch 8 --max-delay-ms 5``);
- the server a user would write by hand: FastAPI, the same decode and engine, one engine call
  per request, no batching (``--hand-written`` mode of this script);
- ``ppinfer serve --runner ray``: the same app on Ray Serve, 1 replica reserving every core
  and 2 replicas sharing them (``--no-ray`` leaves these out);
- the limit: ``ppinfer bench --end-to-end`` on the same photos (decode + preprocess +
  inference + postprocess, no HTTP), and one image's ``predict`` latency.

At each concurrency C, C clients each send a photo (raw body to ``/predict``) and send the next
as soon as the answer comes, for ``--seconds`` (bounded in time and count). Reported:
requests/s, p50/p99 latency, for ppinfer serve the mean batch it formed (from /metrics; with 2
Ray replicas /metrics is one replica's, so none is shown), and the CPU time the server's whole
process tree spent per answered request (Ray's GCS, raylet, proxy, controller and replicas
included): on a machine shared with other jobs, requests/s measure the share of the CPU a
server gets as much as the server, while CPU ms per request is its own cost.
"""


import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

MAX_REQUESTS = 20_000  # per level: a bound besides the time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hand_written_app(model, engine: str):
    """What a user writes in an afternoon: FastAPI + ppinfer's decode and engine, one call per
    request."""
    import numpy as np
    from fastapi import FastAPI, Request

    import ppinfer
    from ppinfer.pipeline.decode import decode_image_bytes

    predictor = ppinfer.load(model, engine=engine)
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        image = decode_image_bytes(await request.body(), "upload")
        result = predictor.predict([np.ascontiguousarray(image)])[0]
        return result.to_json_dict()

    return app


def start(command: list[str], port: int, ready_path: str) -> subprocess.Popen:
    """Start a server; ready when ``ready_path`` answers 200 (Ray's proxy answers before the
    app is deployed). Its stderr goes to a file: a pipe nobody reads could fill and block it."""
    import tempfile

    import httpx

    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"server failed: {log.read()}")
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start")


async def closed_loop(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(i: int, session) -> None:
        nonlocal errors
        n = i
        while time.perf_counter() < stop and len(latencies) < MAX_REQUESTS:
            body = bodies[n % len(bodies)]
            n += concurrency
            t0 = time.perf_counter()
            answer = await session.post(url, content=body)
            if answer.status_code == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as session:
        for body in bodies[:2]:  # warm: first engine calls create kernels
            await session.post(url, content=body)
        began = time.perf_counter()
        await asyncio.gather(*(client(i, session) for i in range(concurrency)))
        wall = time.perf_counter() - began
    ms = sorted(1000 * t for t in latencies)
    return {"concurrency": concurrency, "requests": len(ms), "errors": errors,
            "rps": round(len(ms) / wall, 2),
            "p50_ms": round(statistics.median(ms), 2) if ms else None,
            "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2) if ms else None}


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process ``root`` and every process below it (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(child for child, up in parent.items() if up == pid)
    return total


def batch_metrics(base: str) -> tuple[float, float]:
    import httpx

    text = httpx.get(f"{base}/metrics").text
    values = {line.split()[0]: float(line.split()[-1]) for line in text.splitlines()
              if line.startswith("ppinfer_batch_size_")}
    return values.get("ppinfer_batch_size_count", 0.0), values.get("ppinfer_batch_size_sum", 0.0)


def the_limit(model, engine: str, photos: list) -> dict:
    import ppinfer

    rows = ppinfer.bench(model, engine=engine, batch_size=[1, 8], input=str(photos[0].parent),
                         end_to_end=True, duration=5, warmup=2)
    limit = {f"b{r['batch_size']}": round(r["end_to_end"]["throughput_ips"], 2)
             for r in rows if r["status"] == "ok"}
    with ppinfer.load(model, engine=engine) as predictor:
        predictor.predict(str(photos[0]))
        times = []
        for i in range(30):
            t0 = time.perf_counter()
            predictor.predict(str(photos[i % len(photos)]))
            times.append(1000 * (time.perf_counter() - t0))
    limit["one_image_ms"] = round(statistics.median(times), 2)
    return limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--engine", default="analysis")
    parser.add_argument("--photos", type=Path, default=None)
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray Serve rows")
    parser.add_argument("--hand-written", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hand_written is not None:  # the hand-written server, in its own process
        import uvicorn

        uvicorn.run(hand_written_app(args.model, args.engine), host="127.0.0.1",
                    port=args.hand_written, log_level="warning")
        return
    photos = sorted(args.photos.glob("*.jpg")) if args.photos else [_shipped_photo()]
    bodies = [p.read_bytes() for p in photos]
    levels = [int(c) for c in args.concurrency.split(",")]
    model = ["--model", args.model] if args.model else []
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "cpu_flags": _cpu_flags(), "cores": os.cpu_count(), "engine": args.engine,
              "photos": len(photos), "seconds": args.seconds, "servers": {}}
    serve = [sys.executable, "-m", "ppinfer", "serve", "--engine", args.engine,
             "--max-batch", "8", "--max-delay-ms", "5", *model]
    cores = os.cpu_count() or 1
    servers = {
        "ppinfer serve": serve,
        "hand-written": [sys.executable, __file__, "--engine", args.engine, *model],
    }
    if not args.no_ray:
        servers["ray 1 replica"] = [*serve, "--runner", "ray", "--replica-cpus", str(cores)]
        servers["ray 2 replicas"] = [*serve, "--runner", "ray", "--replicas", "2",
                                     "--replica-cpus", f"{cores / 2:g}"]
    for name, command in servers.items():
        port = free_port()
        ours = name != "hand-written"
        command = [*command, "--port", str(port)] if ours else \
            [*command, "--hand-written", str(port)]
        proc = start(command, port, "/v2/health/ready" if ours else "/docs")
        base = f"http://127.0.0.1:{port}"
        rows = []
        try:
            for c in levels:
                before = batch_metrics(base) if ours and name != "ray 2 replicas" else None
                cpu = tree_cpu_seconds(proc.pid)
                row = asyncio.run(closed_loop(f"{base}/predict", bodies, c, args.seconds))
                cpu = tree_cpu_seconds(proc.pid) - cpu
                row["cpu_ms_per_request"] = round(1000 * cpu / max(row["requests"], 1), 1)
                if before is not None:
                    calls, images = (a - b for a, b in zip(batch_metrics(base), before))
                    row["mean_batch"] = round(images / calls, 2) if calls else None
                rows.append(row)
                print(f"{name:14} c={c:<3} {row['rps']:8.1f} req/s  p50 {row['p50_ms']} ms  "
                      f"p99 {row['p99_ms']} ms  batch {row.get('mean_batch', '-')}  "
                      f"cpu {row['cpu_ms_per_request']} ms/req  errors {row['errors']}",
                      flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=120)
        report["servers"][name] = rows
    report["limit"] = the_limit(args.model, args.engine, photos)
    print(f"limit: bench --end-to-end {report['limit']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


def _shipped_photo() -> Path:
    import ppinfer

    return Path(ppinfer.sample_image_path())


def _cpu_flags() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("Flags:")), [])
    return " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16",
                                "amx_int8") if f in flags)


if __name__ == "__main__":
    main()
