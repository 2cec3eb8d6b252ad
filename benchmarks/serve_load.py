"""``ppinfer serve`` under load, beside its limit and the server a user would write by hand.

One run, on loopback only:

1. ``ppinfer serve`` and ``benchmarks/serve_handwritten.py`` (FastAPI, one engine call per
   request) are started once.
2. Each of ``--rounds`` rounds runs ``ppinfer bench --end-to-end`` on the same photos at batch
   1 and ``--max-batch`` (the limit: decode + preprocess + inference + postprocess with no
   HTTP), then measures both servers in turn at each concurrency. Ratios are taken within a
   round (the same machine load, which on a shared machine moves a lot) and reported as the
   median over rounds with their range.
3. A closed-loop client: C connections (keep-alive), each sending the next photo as a raw
   ``POST /predict`` body as soon as its last answer arrives, for ``--seconds`` after a
   ``--warmup`` or ``--max-requests``, whichever comes first. Written on asyncio streams
   rather than a full HTTP client so the client's own CPU (on the same cores) stays small.
   Every answer is checked: status 200 and the photo's own top-1.

Reports requests/s, p50/p99 latency, the server's CPU per request (from /proc) and, for
ppinfer serve, the mean batch it formed (from ``/metrics``); writes everything to ``--json``.

    python benchmarks/serve_load.py --engine openvino --rounds 3 --json r.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry", "page")


def write_photos(folder: Path) -> list[Path]:
    """scikit-image's bundled photos as JPEGs, plus ppinfer's shipped photo."""
    import cv2
    from skimage import data

    from ppinfer.pipeline.sample import sample_image_path

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        image = getattr(data, name)()
        if image.ndim == 3:
            image = cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / f"{name}.jpg"), image)
        paths.append(folder / f"{name}.jpg")
    shipped = folder / "shipped.jpg"
    shipped.write_bytes(sample_image_path().read_bytes())
    return [*paths, shipped]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}


def start(command: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{command[:4]} ended: {proc.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{command[:4]} did not start listening")


async def one_client(port: int, bodies: list[bytes], tops: list[int], first: int,
                     stop_at: float, budget: list[int], latencies: list[float],
                     failures: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = first
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            body = bodies[index % len(bodies)]
            start = time.perf_counter()
            writer.write(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                         b"application/octet-stream\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            answer = await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not status.startswith(b"HTTP/1.1 200"):
                failures.append(status.decode().strip())
            elif json.loads(answer)["class_ids"][0] != tops[index % len(bodies)]:
                failures.append(f"wrong top-1 for photo {index % len(bodies)}")
            index += 1
    finally:
        writer.close()


async def closed_loop(port: int, bodies: list[bytes], tops: list[int], clients: int,
                      seconds: float, max_requests: int) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    failures: list[str] = []
    budget = [max_requests]
    start = time.perf_counter()
    await asyncio.gather(*(one_client(port, bodies, tops, i, start + seconds, budget,
                                      latencies, failures) for i in range(clients)))
    return latencies, failures, time.perf_counter() - start


def batches(port: int) -> tuple[float, float]:
    """ppinfer serve's (engine calls, images run) so far, from /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()
    found = dict(re.findall(r"^ppinfer_batch_size_(count|sum) (\S+)$", text.decode(), re.M))
    return float(found.get("count", 0)), float(found.get("sum", 0))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(server: subprocess.Popen, port: int, bodies, tops, clients: int, args,
            batched: bool) -> dict:
    asyncio.run(closed_loop(port, bodies, tops, clients, args.warmup, 10 * clients))
    before = batches(port) if batched else None
    cpu, own, load = cpu_seconds(server.pid), time.process_time(), os.getloadavg()[0]
    latencies, failures, wall = asyncio.run(
        closed_loop(port, bodies, tops, clients, args.seconds, args.max_requests))
    cpu, own = cpu_seconds(server.pid) - cpu, time.process_time() - own
    ms = np.asarray(latencies) * 1000
    row = {"clients": clients, "requests": len(latencies), "seconds": wall,
           "rps": len(latencies) / wall, "p50_ms": float(np.percentile(ms, 50)),
           "p99_ms": float(np.percentile(ms, 99)), "failures": failures[:5],
           "failed": len(failures), "server_cpu_ms_per_request": 1000 * cpu / len(latencies),
           "client_cpu_ms_per_request": 1000 * own / len(latencies),
           "load_avg_1m": [load, os.getloadavg()[0]]}
    if batched:
        calls, images = (after - was for after, was in zip(batches(port), before))
        row["mean_batch"] = images / calls if calls else None
    return row


def bench_limit(photos: Path, engine: str, max_batch: int, seconds: float) -> dict:
    """``ppinfer bench --end-to-end`` at batch 1 and ``max_batch``: img/s, p50 and p99 ms."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        subprocess.run([sys.executable, "-m", "ppinfer", "bench", "--engine", engine,
                        "--input", str(photos), "--end-to-end", "--batch-size",
                        f"1,{max_batch}", "--duration", str(seconds), "--warmup", "3",
                        "--json", str(out)], env=env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = json.loads(out.read_text())["results"]
    return {f"b{r['batch_size']}": {"e2e_ips": r["end_to_end"]["throughput_ips"],
                                    "e2e_p50_ms": r["end_to_end"]["latency_ms"]["p50_ms"],
                                    "e2e_p99_ms": r["end_to_end"]["latency_ms"]["p99_ms"]}
            for r in rows}


def predict_one_ms(predictor, paths: list[Path], calls: int = 200) -> tuple[float, float]:
    """Median and p99 wall time of ``Predictor.predict`` on one photo file (in turn), ms."""
    times = []
    for i in range(calls):
        start = time.perf_counter()
        predictor.predict(str(paths[i % len(paths)]))
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)), 1000 * float(np.percentile(times, 99))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="analysis")
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--seconds", type=float, default=4.0, help="per server and level")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bench-seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--max-requests", type=int, default=5000)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-delay-ms", type=float, default=5.0)
    parser.add_argument("--photos", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    tmp = tempfile.TemporaryDirectory()
    folder = args.photos or Path(tmp.name) / "photos"
    paths = sorted(folder.glob("*.jpg")) if args.photos else write_photos(folder)
    bodies = [p.read_bytes() for p in paths]
    import ppinfer

    predictor = ppinfer.load(engine=args.engine)
    tops = [r.class_ids[0] for r in predictor.predict([str(p) for p in paths])]  # the answers
    ours, theirs = free_port(), free_port()
    servers = [
        start([sys.executable, "-m", "ppinfer", "serve", "--port", str(ours), "--engine",
               args.engine, "--max-batch", str(args.max_batch), "--max-delay-ms",
               str(args.max_delay_ms)], ours),
        start([sys.executable, str(HERE / "serve_handwritten.py"), "--port", str(theirs),
               "--engine", args.engine], theirs),
    ]
    rounds = []
    try:
        for number in range(1, args.rounds + 1):
            limit = bench_limit(folder, args.engine, args.max_batch, args.bench_seconds)
            limit["predict_one_ms"], limit["predict_one_p99_ms"] = predict_one_ms(predictor,
                                                                                  paths)
            rows = []
            for clients in (int(c) for c in args.clients.split(",")):
                mine = measure(servers[0], ours, bodies, tops, clients, args, batched=True)
                hand = measure(servers[1], theirs, bodies, tops, clients, args, batched=False)
                rows.append({"clients": clients, "ppinfer_serve": mine, "handwritten": hand})
                print(f"round {number} c={clients:3d}  serve {_line(mine)} batch "
                      f"{mine['mean_batch'] or 0:4.2f}  |  hand {_line(hand)}  failures "
                      f"{mine['failed']}/{hand['failed']}  load {mine['load_avg_1m'][0]:.1f}",
                      flush=True)
            rounds.append({"limit": limit, "rows": rows})
            print(f"round {number} limit: batch {args.max_batch} {limit[f'b{args.max_batch}']}"
                  f", batch 1 {limit['b1']}", flush=True)
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(timeout=60)
    report(rounds, args)


def _line(row: dict) -> str:
    return (f"{row['rps']:6.1f} req/s p50 {row['p50_ms']:6.1f} p99 {row['p99_ms']:6.1f} "
            f"cpu {row['server_cpu_ms_per_request']:4.1f} ms/req")


def _spread(values: list[float]) -> str:
    return f"{np.median(values):.2f} (rounds {min(values):.2f}-{max(values):.2f})"


def report(rounds: list[dict], args) -> None:
    """Medians over rounds; each ratio is taken within a round (the same machine load)."""
    key = f"b{args.max_batch}"
    print("| clients | ppinfer serve req/s | p50 / p99 ms | mean batch | server CPU ms/req "
          "| hand-written req/s | p50 / p99 ms | server CPU ms/req |")
    print("|---|---|---|---|---|---|---|---|")
    for i, clients in enumerate(r["clients"] for r in rounds[0]["rows"]):
        mine = [r["rows"][i]["ppinfer_serve"] for r in rounds]
        hand = [r["rows"][i]["handwritten"] for r in rounds]

        def med(rows, field):
            return float(np.median([row[field] or 0 for row in rows]))

        print(f"| {clients} | {med(mine, 'rps'):.1f} | {med(mine, 'p50_ms'):.0f} / "
              f"{med(mine, 'p99_ms'):.0f} | {med(mine, 'mean_batch'):.2f} | "
              f"{med(mine, 'server_cpu_ms_per_request'):.1f} | {med(hand, 'rps'):.1f} | "
              f"{med(hand, 'p50_ms'):.0f} / {med(hand, 'p99_ms'):.0f} | "
              f"{med(hand, 'server_cpu_ms_per_request'):.1f} |")
    limits = [r["limit"][key]["e2e_ips"] for r in rounds]
    singles = [r["limit"]["predict_one_ms"] for r in rounds]
    print(f"limit (bench --end-to-end, batch {args.max_batch}): {_spread(limits)} img/s; one "
          f"image's Predictor.predict (median): {_spread(singles)} ms")
    by = [{row["clients"]: row for row in r["rows"]} for r in rounds]
    if all(16 in b for b in by):
        to_limit = [b[16]["ppinfer_serve"]["rps"] / r["limit"][key]["e2e_ips"]
                    for b, r in zip(by, rounds)]
        to_hand = [b[16]["ppinfer_serve"]["rps"] / b[16]["handwritten"]["rps"] for b in by]
        print(f"c=16: {_spread(to_limit)}x the limit (target 0.8); {_spread(to_hand)}x the "
              "hand-written server (target 1.5)")
    if all(1 in b for b in by):
        tail = [b[1]["ppinfer_serve"]["p99_ms"] / r["limit"]["predict_one_ms"]
                for b, r in zip(by, rounds)]
        own = [b[1]["ppinfer_serve"]["p99_ms"] / r["limit"]["predict_one_p99_ms"]
               for b, r in zip(by, rounds)]
        print(f"c=1: p99 = {_spread(tail)}x one image's predict (median; target 1.3), "
              f"{_spread(own)}x predict's own p99")
    if args.json:
        args.json.write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "engine": args.engine,
            "max_batch": args.max_batch, "max_delay_ms": args.max_delay_ms,
            "seconds": args.seconds, "load_avg": os.getloadavg(), "cpus": os.cpu_count(),
            "rounds": rounds}, indent=1))
        print(f"Wrote {args.json}")


if __name__ == "__main__":
    main()
