"""The figures of ``analysis_levers.py``: ratios to ONNX Runtime and to baseline, agreement
with baseline, and the printed table. Rows are plain dicts (the JSON's ``results``)."""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np
from analysis_levers_catalog import BASELINE

REFERENCE = "onnxruntime"
TOLERANCE = 1e-4  # largest |score difference| to baseline before a lever is flagged


def derive(rows: list[dict]) -> None:
    """Ratios to ONNX Runtime (of the same process) and to baseline, agreement with baseline;
    in place. A child's ``vs_baseline`` is its ratio to its ONNX Runtime over env-control's."""
    index = {(r["model_dir"], r["batch"], r["lever"], r["process"]): r for r in rows}

    def find(r: dict, lever: str, process: str) -> dict:
        return index.get((r["model_dir"], r["batch"], lever, process)) or {}

    for r in rows:
        ort = find(r, REFERENCE, r["process"]).get("images_per_s")
        r["onnxruntime_images_per_s"] = ort
        r["ratio_to_onnxruntime"] = ratio(r.get("images_per_s"), ort)
    for r in rows:
        base = find(r, BASELINE.name, "main")
        if r["process"] == "main":
            r["vs_baseline"] = ratio(r.get("images_per_s"), base.get("images_per_s"))
        elif r["lever"] != REFERENCE:
            control = find(r, "env-control", "child:env-control")
            r["vs_baseline"] = ratio(r["ratio_to_onnxruntime"],
                                     control.get("ratio_to_onnxruntime"))
        agreement(r, base)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def agreement(r: dict, base: dict | None) -> None:
    r["max_abs_diff"] = r["top1_agreement"] = None
    r["flagged"] = False
    if r.get("probs") is None or base is None or base.get("probs") is None:
        return
    mine, ref = np.asarray(r["probs"]), np.asarray(base["probs"])
    if mine.shape != ref.shape:
        r["flagged"], r["reason"] = True, f"output shape {mine.shape} != baseline {ref.shape}"
        return
    r["max_abs_diff"] = float(np.max(np.abs(mine - ref)))
    r["top1_agreement"] = float(np.mean(mine.argmax(1) == ref.argmax(1)))
    r["flagged"] = r["max_abs_diff"] > TOLERANCE or r["top1_agreement"] < 1.0


def fmt(value, spec: str, suffix: str = "") -> str:
    """``value`` formatted to the column's width, or a dash of that width."""
    text = f"{value:{spec}}{suffix}" if value is not None else "-"
    width = len(f"{0.0:{spec}}{suffix}") if value is None else len(text)
    return text.rjust(width)


def print_table(rows: list[dict], out=sys.stdout) -> None:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["batch"]), []).append(r)
    head = (f"{'lever':<24} {'process':<8} {'img/s':>7} {'÷ ORT':>6} {'vs base':>7} "
            f"{'cores':>5} {'1st ms':>7} {'max|Δ|':>8} {'top-1':>5}  note")
    for (model, batch), group in groups.items():
        ir = next((r.get("ir") for r in group if r.get("ir")), "?")
        print(f"\n{model} ({ir}), batch {batch}", file=out)
        print(head, file=out)
        for r in group:
            note = "CHANGES RESULTS" if r.get("flagged") else ""
            if r["status"] != "ok":
                note = f"{r['status']}: {r.get('reason')}"
            process = "main" if r["process"] == "main" else "child"
            name = r["lever"]
            if process == "child" and name == REFERENCE:  # the reference of the row above
                name = f"  └ {REFERENCE}"
            print(f"{name:<24} {process:<8} {fmt(r.get('images_per_s'), '7.1f')} "
                  f"{fmt(r.get('ratio_to_onnxruntime'), '5.2f', 'x')} "
                  f"{fmt(r.get('vs_baseline'), '6.2f', 'x')} {fmt(r.get('cores_used'), '5.2f')} "
                  f"{fmt(r.get('first_run_ms'), '7.1f')} {fmt(r.get('max_abs_diff'), '8.1e')} "
                  f"{fmt(r.get('top1_agreement'), '5.0%')}  {note}".rstrip(), file=out)


def machine() -> dict:
    from ppinfer import __version__
    from ppinfer.runtime.paddle_env import package_version, paddle_env

    env = paddle_env()
    load = None
    with contextlib.suppress(OSError, AttributeError):
        load = os.getloadavg()[0]
    return {"cpu_model": env.cpu_model, "cpu_count": env.cpu_count, "paddle": env.version,
            "onnxruntime": package_version("onnxruntime"),
            "paddle2onnx": package_version("paddle2onnx"), "ppinfer": __version__,
            "python": sys.version.split()[0], "load_avg_1min_at_start": load}
