#!/usr/bin/env bash
# The runs behind BENCHMARKS.md's "Engines side by side" section (issue 12): analysis,
# onnxruntime and openvino on ResNet50_vd, EfficientNet-Lite0 and MobileNetV3 (PIR and legacy
# exports), then end-to-end predict against engine-only on the legacy exports.
#
#   bash benchmarks/engines_side_by_side.sh [WORK_DIR]     (default /tmp/ppinfer-bench)
#
# Needs ppinfer with the cpu, onnx, openvino and bench extras and scikit-image.
set -euo pipefail

work=${1:-/tmp/ppinfer-bench}
here=$(cd "$(dirname "$0")" && pwd)
export PPINFER_HOME=${PPINFER_HOME:-$work/home}

python "$here/prepare.py" "$work" --also-legacy --mobilenet
names=(ResNet50_vd EfficientNet_lite0 MobileNetV3_large_x1_0)
models=()
for name in "${names[@]}"; do
    for suffix in "" "-legacy"; do
        model="$work/models/$name$suffix"
        models+=(--model "$model")
        # Convert to ONNX beforehand (cached): the onnxruntime and openvino (PIR) builds are
        # then session starts, not conversions.
        ppinfer predict --engine onnxruntime --model "$model" -i "$work/photos/coffee.jpg" \
            --json >/dev/null
    done
done

ppinfer bench "${models[@]}" --engine analysis,onnxruntime,openvino --precision fp32 \
    --batch-size 1,8 --input "$work/photos" --warmup 2 --duration 2 \
    --json "$work/engines.json" --plot "$work/engines.png"

ppinfer bench --model "$work/models/ResNet50_vd-legacy" \
    --model "$work/models/EfficientNet_lite0-legacy" \
    --engine analysis,onnxruntime,openvino --precision fp32 --batch-size 8 \
    --input "$work/photos" --end-to-end --warmup 2 --duration 3 \
    --json "$work/end-to-end.json"
