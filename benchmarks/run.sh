#!/usr/bin/env bash
# The run behind BENCHMARKS.md: prepare photos and models, then ONE `ppinfer bench`.
#
#   bash benchmarks/run.sh [WORK_DIR]      (default /tmp/ppinfer-bench)
#
# Needs ppinfer with the cpu, onnx and bench extras and scikit-image (for the photos).
# Run it on a quiet machine: the bench flags configurations whose latency varies by over 10%.
set -euo pipefail

work=${1:-/tmp/ppinfer-bench}
here=$(cd "$(dirname "$0")" && pwd)
export PPINFER_HOME=${PPINFER_HOME:-$work/home}

python "$here/prepare.py" "$work"
models=("$work/models/ResNet50_vd" "$work/models/EfficientNet_lite0")

# Convert to ONNX once beforehand, so the onnxruntime build time is a session start, not a
# conversion (the .onnx is cached under $PPINFER_HOME/onnx, keyed by the model files' digest).
for model in "${models[@]}"; do
    ppinfer predict --engine onnxruntime --model "$model" -i "$work/photos/coffee.jpg" --json >/dev/null
done

ppinfer bench \
    --model "${models[0]}" --model "${models[1]}" \
    --engine analysis,executor-inference,onnxruntime \
    --precision fp32,bf16 --batch-size 1,8 \
    --input "$work/photos" --end-to-end \
    --warmup 2 --duration 2 \
    --json "$work/bench.json" --plot "$work/bench.png"

python "$here/table.py" "$work/bench.json"
