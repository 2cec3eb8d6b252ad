"""The two stages that run inside Ray workers: decode + preprocess tasks, and predictor actors.

Both are plain Python (numpy, pyarrow, ppinfer's pipeline); Ray itself is only imported by
:mod:`ppinfer.runners.ray_runner`, which wires them into a Ray Data pipeline. Rows carry the
input ``index`` (results are written in input order), the ``file_name`` as the user gave it
(made printable, as in the JSON lines) and the ``path`` to open (absolute, as bytes: any file
name survives Arrow's UTF-8 strings). A row that fails keeps its place with an ``error``.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import numpy as np

from ppinfer.errors import ImageError

#: columns of the results dataset, in order (index: position in the input)
RESULT_COLUMNS = ("index", "file_name", "file_name_base64", "class_ids", "scores",
                  "label_names", "error")
#: per-row diagnostics next to the results: who predicted it, how long its stages took
TIMING_COLUMNS = ("worker", "build_seconds", "preprocess_seconds", "inference_seconds",
                  "postprocess_seconds")


def decode_batch(batch: dict[str, np.ndarray], *, preprocess: Any, input_shape: tuple,
                 max_pixels: int) -> dict[str, np.ndarray]:
    """Paths -> CHW float32 tensors (a Ray Data ``map_batches`` function, numpy format).

    An image that cannot be read gets a zero tensor and its error sentence; inputs that failed
    before (``error`` already set, e.g. a missing ``-i`` path) pass through.
    """
    from ppinfer.pipeline.decode import load_image
    from ppinfer.pipeline.preprocess import preprocess_image

    count = len(batch["index"])
    tensors = np.zeros((count, *input_shape), dtype=np.float32)
    errors = list(batch["error"])
    seconds = np.zeros(count, dtype=np.float64)
    for i in range(count):
        if errors[i]:
            continue
        start = time.perf_counter()
        try:
            image = load_image(os.fsdecode(bytes(batch["path"][i])), max_pixels=max_pixels)
            tensors[i] = preprocess_image(image, preprocess)
        except ImageError as exc:
            # the sentence names the file by the path the user gave, as a local run does
            errors[i] = str(exc).replace(os.fsdecode(bytes(batch["path"][i])),
                                         str(batch["file_name"][i]))
        seconds[i] = time.perf_counter() - start
    return {"index": batch["index"], "file_name": batch["file_name"],
            "file_name_base64": batch["file_name_base64"], "tensor": tensors,
            "error": np.array(errors, dtype=object), "preprocess_seconds": seconds}


def engine_class(engine: str | type) -> type:
    """An engine by registered name, or an Engine subclass as is (it reaches the workers by
    reference, so its module must be importable there)."""
    if isinstance(engine, type):
        return engine
    from ppinfer.engines import get_engine

    return get_engine(engine)


class PredictActor:
    """One ppinfer engine per Ray actor, built once in ``__init__`` from the model's path.

    The model is never exported or copied here: ``source`` names files that every node must
    see at the same path (shared storage), and the engine loads them. The build time goes out
    with every row this actor predicts, so the driver can report it per actor.
    """

    def __init__(self, *, engine: Any, source: Any, config: Any) -> None:
        check_model_on_this_node(source)
        start = time.perf_counter()
        self.engine = engine_class(engine)(source, config)
        self.engine.ensure_built()
        self.build_seconds = time.perf_counter() - start
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict[str, np.ndarray]):
        import pyarrow as pa

        count = len(batch["index"])
        errors = [str(e) if e else None for e in batch["error"]]
        ok = [i for i in range(count) if errors[i] is None]
        ids: list[Any] = [None] * count
        scores: list[Any] = [None] * count
        labels: list[Any] = [None] * count
        infer = post = 0.0
        if ok:
            start = time.perf_counter()
            outputs = self.engine.execute(np.ascontiguousarray(batch["tensor"][ok]))
            middle = time.perf_counter()
            results = self.engine.analyze(outputs, [str(batch["file_name"][i]) for i in ok])
            infer, post = middle - start, time.perf_counter() - middle
            for i, result in zip(ok, results):
                ids[i], scores[i], labels[i] = (result.class_ids, result.scores,
                                                result.label_names)
        share = 1.0 / max(len(ok), 1)
        done = set(ok)
        predicted = [i in done for i in range(count)]
        return pa.table({
            "index": pa.array(batch["index"], pa.int64()),
            "file_name": pa.array([str(n) for n in batch["file_name"]], pa.string()),
            "file_name_base64": pa.array([n if isinstance(n, str) and n else None
                                          for n in batch["file_name_base64"]], pa.string()),
            "class_ids": pa.array(ids, pa.list_(pa.int64())),
            "scores": pa.array(scores, pa.list_(pa.float64())),
            "label_names": pa.array(labels, pa.list_(pa.string())),
            "error": pa.array(errors, pa.string()),
            "worker": pa.array([self.worker] * count, pa.string()),
            "build_seconds": pa.array([self.build_seconds] * count, pa.float64()),
            "preprocess_seconds": pa.array(batch["preprocess_seconds"], pa.float64()),
            "inference_seconds": pa.array([infer * share if p else 0.0 for p in predicted],
                                          pa.float64()),
            "postprocess_seconds": pa.array([post * share if p else 0.0 for p in predicted],
                                            pa.float64()),
        })


def check_model_on_this_node(source: Any) -> None:
    """A model path missing on a worker node is a setup error, said in one sentence."""
    from ppinfer.errors import ConfigError

    layout = getattr(source, "layout", None)
    paths = [layout.root] if layout is not None else []
    if getattr(source, "checkpoint", None) is not None:
        paths.append(source.checkpoint)
    for path in paths:
        if not os.path.exists(path):
            raise ConfigError(
                f"The model path {path} does not exist on Ray node {socket.gethostname()}: "
                "put the model on storage every node mounts at the same path."
            )
