"""Top-1 agreement between the configurations of a ``ppinfer bench --json`` file.

    python benchmarks/agreement.py r.json REFERENCE [OTHER ...]

Each argument names a configuration as ``MODEL:ENGINE:PRECISION:BATCH``. Prints, for each
OTHER, the share of input images whose top-1 class equals REFERENCE's (runs with real
``--input`` images record the top-1 class of every image). ``bench`` itself compares within a
model; this compares across models, e.g. a float model with its int8 quantized copy.
"""

from __future__ import annotations

import json
import sys


def find(doc: dict, spec: str) -> dict:
    model, engine, precision, batch = spec.split(":")
    for r in doc["results"]:
        if (r["model"], r["engine"], r["precision"], str(r["batch_size"])) == (
            model, engine, precision, batch
        ):
            if not r["top1"]:
                sys.exit(f"{spec} has no top-1 classes (status {r['status']}; real --input?)")
            return r
    sys.exit(f"{spec} is not in the file")


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        doc = json.load(fh)
    reference = find(doc, sys.argv[2])
    for spec in sys.argv[3:]:
        other = find(doc, spec)
        same = sum(a == b for a, b in zip(reference["top1"], other["top1"]))
        print(f"{spec} vs {sys.argv[2]}: top-1 agrees on {same}/{len(reference['top1'])} images "
              f"({100 * same / len(reference['top1']):.0f}%)")


if __name__ == "__main__":
    main()
