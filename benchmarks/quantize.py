"""Post-training int8 quantization of an exported model, for Paddle Inference's CPU int8 path.

    python benchmarks/quantize.py MODEL_DIR OUT_DIR --calibration PHOTOS_DIR [--algo hist]

Paddle Inference runs int8 on the CPU (``--precision int8``: ``enable_mkldnn_int8``) only for a
model that already holds quantize / dequantize ops; on a float model that call changes nothing.
This script makes such a model with Paddle's own post-training quantization
(``paddle.static.quantization.PostTrainingQuantization``: activations calibrated on real
images, weights per channel, ``quantize_linear`` ops), reading a ``.pdmodel`` program. On
Paddle 3 it runs under the legacy IR, so export the model with ``--format legacy`` first.
The output keeps the source's ``inference.yml`` (preprocessing, labels).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from pathlib import Path


def calibration_batches(model_dir: Path, photos: Path, batch_size: int):
    import numpy as np

    from ppinfer.modelfiles.source import resolve_source
    from ppinfer.pipeline.inputs import expand_inputs
    from ppinfer.pipeline.preprocess import load_and_preprocess

    source = resolve_source(model=str(model_dir), prefer="legacy")
    images = np.stack([load_and_preprocess(item.path, source.preprocess)
                       for item in expand_inputs([str(photos)]) if item.error is None])
    return source, [images[i : i + batch_size] for i in range(0, len(images), batch_size)]


def quantize(model_dir: Path, out: Path, photos: Path, algo: str, batch_size: int) -> None:
    import paddle
    from paddle.static.quantization import PostTrainingQuantization

    from ppinfer.runtime.paddle_env import legacy_ir_guard

    source, batches = calibration_batches(model_dir, photos, batch_size)
    if source.layout.kind != "legacy":
        sys.exit(f"{model_dir} holds a {source.layout.kind} model: export it with --format legacy.")

    class Batches(paddle.io.DataLoader):
        """PostTrainingQuantization takes only a DataLoader, and calls it for feed dicts."""

        def __init__(self) -> None:  # no dataset: the batches are in memory
            pass

        def __len__(self) -> int:
            return len(batches)

        def __call__(self):
            for batch in batches:
                yield {source.input_name: batch}

    paddle.enable_static()
    with legacy_ir_guard():
        ptq = PostTrainingQuantization(
            executor=paddle.static.Executor(paddle.CPUPlace()),
            model_dir=str(model_dir),
            model_filename=source.layout.program.name,
            params_filename=source.layout.params.name,
            data_loader=Batches(),
            batch_nums=len(batches),
            algo=algo,
            quantizable_op_type=["conv2d", "depthwise_conv2d", "mul", "matmul", "matmul_v2"],
            onnx_format=True,
            round_type="round",
        )
        with contextlib.redirect_stdout(sys.stderr):
            ptq.quantize()
        ptq.save_quantized_model(str(out), model_filename="inference.pdmodel",
                                 params_filename="inference.pdiparams")
    if source.layout.card is not None:
        shutil.copy(source.layout.card, out / source.layout.card.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--calibration", type=Path, required=True, help="images (dir or glob)")
    parser.add_argument("--algo", default="hist", help="hist, KL, avg, mse, abs_max (Paddle's)")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    quantize(args.model, args.out, args.calibration, args.algo, args.batch_size)
    print(args.out)


if __name__ == "__main__":
    main()
