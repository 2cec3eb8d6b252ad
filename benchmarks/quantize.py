"""int8 against fp32 per engine, side by side in one run: BENCHMARKS.md's "int8 vs fp32".

    python benchmarks/quantize.py OUT_DIR [--samples 64] [-b 8] [--duration 6] [--rounds 3]

Makes (or reuses) ``OUT_DIR/models/{ResNet50_vd,EfficientNet_lite0}-legacy`` and the photos
with ``benchmarks/prepare.py`` (ResNet50_vd with Paddle's random initialisation: speed does not
depend on the weights, agreement does, so only Lite0's agreement means anything), quantizes each
model anew with ``ppinfer quantize`` for every engine whose tool is installed (calibrated on
the photos; the quantize step's own agreement with fp32 and its time are printed), then times
every float model at fp32 and every int8 model at int8 on its engine in one ``ppinfer bench``
run: the timed batches shared out over interleaved rounds, so a machine that gets busy mid-run
slows every row alike. Prints a Markdown table with the date and ``lscpu``'s flags that matter,
and writes every figure to ``--json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ENGINES = ("analysis", "openvino", "onnxruntime")
MODELS = ("ResNet50_vd", "EfficientNet_lite0")
FLAGS = ("avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "avx_vnni")


def cpu_flags() -> str:
    """The int8/bf16 flags ``lscpu`` shows, and the model name."""
    text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = set(info.get("Flags", "").split())
    shown = " ".join(f for f in FLAGS if f in flags) or "none of " + " ".join(FLAGS)
    return f"{info.get('Model name', '?').strip()}, {info.get('CPU(s)', '?').strip()} CPUs; {shown}"


def quantized(float_dir: Path, photos: Path, out: Path, engine: str, samples: int) -> Path | None:
    """``float_dir`` quantized for ``engine`` into ``out`` (made anew each run: an int8 model
    kept from an earlier run may come from other quantization code), or None when its tool is
    missing. Prints the agreement with fp32 and how long quantizing took."""
    import ppinfer
    from ppinfer.errors import PPInferError

    started = time.perf_counter()
    try:
        result = ppinfer.quantize(photos, out, model=float_dir, engine=engine, samples=samples,
                                  force=True)
    except PPInferError as exc:
        print(f"{float_dir.name} {engine}: not quantized: {exc}", file=sys.stderr)
        return None
    print(f"{float_dir.name} {engine}: quantized in {time.perf_counter() - started:.0f} s; "
          f"{result.verification.describe()}", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--samples", type=int, default=64, help="calibration images")
    parser.add_argument("-b", "--batch-size", default="8", help="batch sizes")
    parser.add_argument("--duration", type=float, default=6.0, help="timed seconds per row")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()

    import prepare

    import ppinfer
    from ppinfer.models.efficientnet import lite0_weights_path

    photos = args.out / "photos"
    prepare.write_photos(photos)
    checkpoints = {"ResNet50_vd": prepare.random_resnet50_vd_checkpoint(
        args.out / "checkpoints" / "ResNet50_vd"), "EfficientNet_lite0": lite0_weights_path()}
    models: list[Path] = []
    for name in MODELS:
        float_dir = prepare.export(name, Path(checkpoints[name]),
                                   args.out / "models" / f"{name}-legacy", "legacy")
        models.append(float_dir)
        for engine in ENGINES:
            made = quantized(float_dir, photos, args.out / "models" / f"{name}-int8-{engine}",
                             engine, args.samples)
            if made is not None:
                models.append(made)
    # every model on every engine at fp32 and int8: the pairs that cannot run (a float model at
    # int8, an int8 model on another engine's format) come back skipped with their reason
    rows = ppinfer.bench([str(m) for m in models], engine=list(ENGINES),
                         precision=["fp32", "int8"], batch_size=args.batch_size,
                         duration=args.duration, rounds=args.rounds, warmup=3)
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n{when}; {cpu_flags()}\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"date": when, "cpu": cpu_flags(), "results": rows},
                                        indent=1) + "\n")


def table(rows: list[dict]) -> str:
    """model | engine | batch | fp32 img/s | int8 img/s | int8 / fp32, from the bench rows."""
    speed: dict[tuple, float] = {}
    for row in rows:
        if row.get("status") != "ok":
            continue
        model = Path(row["model"]).name
        base, _, made_for = model.partition("-int8-")
        kind = "int8" if made_for else "fp32"
        if kind == "int8" and made_for != row["engine"]:
            continue  # e.g. Paddle's int8 program read by OpenVINO: not this table's question
        speed[(base.removesuffix("-legacy"), row["engine"], row["batch_size"], kind)] = (
            row["throughput_ips"])
    lines = ["| model | engine | batch | fp32 img/s | int8 img/s | int8 / fp32 |",
             "|---|---|---|---|---|---|"]
    for (model, engine, batch, kind), fp32 in sorted(speed.items()):
        if kind != "fp32":
            continue
        int8 = speed.get((model, engine, batch, "int8"))
        ratio = f"{int8 / fp32:.2f}x" if int8 else "-"
        lines.append(f"| {model} | {engine} | {batch} | {fp32:.1f} | "
                     f"{f'{int8:.1f}' if int8 else '-'} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
