"""``analysis``: Paddle Inference (``paddle.inference.Config`` + predictor, zero-copy handles).

Speed in Python: one predictor per engine, built once and reused for every batch; on the CPU
the input handle borrows the caller's batch memory (``share_external_data`` on a tensor that
wraps the NumPy buffer, no copy); the input is reshaped only when the batch shape changes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ppinfer.config import PRECISIONS, apply_calls
from ppinfer.engines.base import Engine, first_line, register_engine
from ppinfer.errors import ModelFormatError
from ppinfer.runtime.paddle_core import paddle_core


@register_engine("analysis")
class AnalysisEngine(Engine):
    layouts = frozenset({"pir", "legacy", "seed", "uncombined"})
    precisions = frozenset(PRECISIONS)
    summary = "Paddle Inference predictor: IR passes, oneDNN, TensorRT, zero-copy"

    def build(self) -> None:
        core = paddle_core().module  # Paddle Inference, without `import paddle` when possible
        layout = self.source.layout
        if layout.kind == "uncombined":
            config = core.AnalysisConfig(str(self._uncombined_dir(layout)))
        else:
            config = core.AnalysisConfig(str(layout.program), str(layout.params))
        calls = self.config.inference_calls(
            self.source.input_name, self.source.input_shape, ir=layout.ir
        )
        apply_calls(config, calls)
        try:
            self.predictor = core.create_predictor(config)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelFormatError(
                f"Paddle Inference cannot load the {layout.describe()} "
                f"({first_line(exc)}): check that the program and parameters belong together."
            ) from None
        self.input_handle = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output_handle = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self._shape: list[int] | None = None
        self._borrowed = None  # the batch the input handle points at, kept alive
        self._wrap = None if self.config.use_gpu else _zero_copy_wrapper(core)

    def _uncombined_dir(self, layout) -> Path:
        """Paddle Inference reads an uncombined model only as ``DIR/__model__``: link one."""
        if layout.program.name == "__model__":
            return layout.root
        self._linkdir = tempfile.TemporaryDirectory(prefix="ppinfer-uncombined-")
        linked = Path(self._linkdir.name)
        for entry in layout.root.iterdir():
            if entry.is_file() and entry != layout.program:
                os.symlink(entry.resolve(), linked / entry.name)
        os.symlink(layout.program.resolve(), linked / "__model__")
        return linked

    def execute(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._wrap is not None:
            try:
                tensor = self._wrap(batch)
            except (TypeError, RuntimeError, ValueError):  # e.g. a read-only buffer
                batch = batch.copy()
                tensor = self._wrap(batch)
            _share(self.input_handle, tensor)
            self._borrowed = batch
        else:
            if list(batch.shape) != self._shape:
                self._shape = list(batch.shape)
                self.input_handle.reshape(self._shape)
            _copy_from_cpu(self.input_handle, batch)
        self.predictor.run()
        return self.output_handle.copy_to_cpu()


def _share(handle, tensor) -> None:
    """``handle.share_external_data(tensor)``: its C++ binding, which ``paddle.inference`` wraps
    in Python (the wrapper exists only once ``import paddle`` has run)."""
    bind = getattr(handle, "_share_external_data_bind", None)
    (bind or handle.share_external_data)(tensor)


def _copy_from_cpu(handle, batch: np.ndarray) -> None:
    bind = getattr(handle, "_copy_from_cpu_bind", None)
    (bind or handle.copy_from_cpu)(batch)


def _zero_copy_wrapper(core):
    """A function NumPy array -> Paddle CPU tensor over the same memory, or None if unavailable.

    ``DenseTensor.set(array, place, zero_copy=True)`` wraps the buffer without copying it
    (Paddle 2.6's extension calls the class Tensor, ``paddle`` LoDTensor); the predictor reads
    it during ``run()``.
    """
    tensor_cls = (getattr(core, "DenseTensor", None) or getattr(core, "LoDTensor", None)
                  or getattr(core, "Tensor", None))
    if tensor_cls is None:
        return None
    place = core.CPUPlace()

    def wrap(batch: np.ndarray):
        tensor = tensor_cls()
        tensor.set(batch, place, True)
        return tensor

    try:
        wrap(np.zeros((1,), dtype=np.float32))
    except (TypeError, RuntimeError, ValueError):
        return None
    return wrap
