"""Where bf16 time goes: Paddle Inference's oneDNN primitives against OpenVINO's executed nodes.

Paddle Inference (``analysis`` with ``enable_mkldnn_bfloat16``) runs the model once in a child
process with ``ONEDNN_VERBOSE=1``; every primitive of one warm run is counted by kind,
implementation and data types. OpenVINO compiles the legacy program with
``INFERENCE_PRECISION_HINT=bf16`` and reports its executed nodes with ``PERF_COUNT``. Counts
do not depend on the machine's load; the milliseconds do (verbose mode also slows oneDNN).

    python benchmarks/bf16_census.py MODEL_DIR [--batch 1] [--json out.json]

MODEL_DIR is a ppinfer export holding both programs (inference.pdmodel beside inference.json).
Needs a CPU with avx512_bf16 or amx_bf16 (`lscpu`): elsewhere both run bf16 emulated or not at all.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys

CHILD = """
import sys, numpy as np, paddle.inference as pi
model, program, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = pi.Config(f"{model}/inference.{program}", f"{model}/inference.pdiparams")
config.disable_gpu(); config.enable_mkldnn(); config.set_cpu_math_library_num_threads(2)
config.enable_mkldnn_bfloat16(); config.disable_glog_info()
predictor = pi.create_predictor(config)
handle = predictor.get_input_handle(predictor.get_input_names()[0])
x = np.random.rand(batch, 3, 224, 224).astype("float32")
for _ in range(3):
    handle.copy_from_cpu(x); predictor.run()
print("RUN-MARK", flush=True)
handle.copy_from_cpu(x); predictor.run()
print("RUN-DONE", flush=True)
"""


def paddle_census(model: str, program: str, batch: int) -> dict[str, list]:
    """{kind impl dtypes: [count, ms]} for one warm run of analysis bf16."""
    run = subprocess.run([sys.executable, "-c", CHILD, model, program, str(batch)],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "ONEDNN_VERBOSE": "1"})
    lines = run.stdout.split("\n")
    if "RUN-DONE" not in lines:
        raise SystemExit(f"analysis bf16 failed on {program}: {run.stderr[-800:]}")
    census: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
    for line in lines[lines.index("RUN-MARK") + 1:lines.index("RUN-DONE")]:
        fields = line.split(",")
        if not line.startswith("onednn_verbose") or len(fields) < 11 or fields[3] != "exec":
            continue
        kind, impl, descriptors, alg = fields[5], fields[6], fields[8], fields[10]
        types = "/".join(sorted(set(re.findall(r"(?:src|wei|dst)[^:]*:([a-z0-9]+)",
                                               descriptors))))
        name = kind + (f" ({alg.removeprefix('alg:')})" if kind in ("binary", "pooling") else "")
        key = f"{name} {impl.split(':')[-1]} {types}"
        census[key][0] += 1
        census[key][1] += float(fields[-1])
    return dict(census)


def openvino_census(model: str, batch: int) -> dict[str, list]:
    import numpy as np
    import openvino as ov

    core = ov.Core()
    network = core.read_model(f"{model}/inference.pdmodel")
    network.reshape({network.inputs[0].get_any_name(): [batch, 3, 224, 224]})
    compiled = core.compile_model(network, "CPU", {"INFERENCE_PRECISION_HINT": "bf16",
                                                   "PERF_COUNT": "YES",
                                                   "INFERENCE_NUM_THREADS": 2})
    request = compiled.create_infer_request()
    x = np.random.rand(batch, 3, 224, 224).astype("float32")
    for _ in range(4):
        request.infer({0: x})
    census: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
    for node in request.get_profiling_info():
        if node.status == node.Status.EXECUTED:
            key = f"{node.node_type} {node.exec_type}"
            census[key][0] += 1
            census[key][1] += node.real_time.total_seconds() * 1000
    return dict(census)


def show(title: str, census: dict[str, list]) -> None:
    print(f"\n{title}: {sum(c for c, _ in census.values())} primitives, "
          f"{sum(ms for _, ms in census.values()):.1f} ms")
    for key, (count, ms) in sorted(census.items(), key=lambda kv: -kv[1][1]):
        print(f"  {count:4d} {ms:8.2f} ms  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = {f"analysis {program}": paddle_census(args.model, program, args.batch)
              for program in ("pdmodel", "json")}
    result["openvino"] = openvino_census(args.model, args.batch)
    for title, census in result.items():
        show(title, census)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
