"""A ``ppinfer bench --json`` file as Markdown tables (what BENCHMARKS.md shows).

    python benchmarks/table.py r.json

One table of the configurations that ran, one list of the skipped ones with their reasons, and
the machine the file says it was measured on.
"""

from __future__ import annotations

import json
import sys


def _f(value, fmt=".1f", suffix=""):
    return "–" if value is None else f"{value:{fmt}}{suffix}"


def machine(doc: dict) -> str:
    env = doc["environment"]
    cpu, paddle, packages = env["cpu"], env["paddle"], env["packages"]
    features = [f for f in ("avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
                if f in cpu["flags"]]
    return (
        f"{env['date']}; {cpu['model']}, {cpu['usable_cores']} cores ({' '.join(features)}), "
        f"{cpu['memory_gb']} GB; Paddle {paddle['version']} ({paddle['ir']}, commit "
        f"{paddle['build'].get('commit', '?')[:8]}, oneDNN {paddle['onednn']}); onnxruntime "
        f"{packages.get('onnxruntime')}, paddle2onnx {packages.get('paddle2onnx')}, openvino "
        f"{packages.get('openvino')}; ppinfer "
        f"{env['ppinfer']}, Python {env['python']}"
    )


def table(doc: dict) -> str:
    base = doc["settings"]["baseline"]
    e2e = doc["settings"]["end_to_end"]
    head = ["model", "engine", "precision", "batch", "img/s",
            f"× {base['engine']} {base['precision']}", "p50 ms", "p99 ms", "cv", "cores used"]
    if e2e:
        head += ["end-to-end img/s", f"e2e × {base['engine']}", "e2e / engine",
                 "pre / inf / post ms per image"]
    head += ["top-1 = fp32", "max Δ score vs fp32", "build s", "first run ms", "peak RSS MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in doc["results"]:
        if r["status"] != "ok":
            continue
        lat = r["latency_ms"]
        row = [r["model"], r["engine"], r["precision"], str(r["batch_size"]),
               _f(r["throughput_ips"]), _f(r["ratio_to_baseline"], ".2f", "×"),
               _f(lat["p50_ms"]), _f(lat["p99_ms"]),
               _f(100 * lat["cv"], ".0f", "%") + (" ⚠" if r["unstable"] else ""),
               _f(r["cores_used"], ".2f")]
        if e2e:
            p = r["end_to_end"] or {}
            stages = p.get("stages_ms_per_image") or {}
            row += [_f(p.get("throughput_ips")) + (" ⚠" if p.get("unstable") else ""),
                    _f(r["e2e_ratio_to_baseline"], ".2f", "×"), _f(p.get("vs_engine_only"), ".2f"),
                    " / ".join(_f(stages.get(k)) for k in ("preprocess", "inference",
                                                           "postprocess"))]
        agree = r["top1_vs_fp32"]
        row += [_f(None if agree is None else 100 * agree, ".0f", "%"),
                _f(r.get("score_diff_vs_fp32"), ".3f"), _f(r["build_s"], ".2f"),
                _f(r["first_run_ms"], ".0f"), _f(r["peak_rss_mb"], ".0f")]
        lines.append("| " + " | ".join(row) + " |")
    skipped = [f"- {r['model']} {r['engine']} {r['precision']} b{r['batch_size']}: {r['reason']}"
               for r in doc["results"] if r["status"] != "ok"]
    return "\n".join(lines + ([""] + skipped if skipped else []))


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        doc = json.load(fh)
    print(f"Measured {machine(doc)}.\n")
    print(table(doc))


if __name__ == "__main__":
    main()
