"""``analysis``: Paddle Inference (``paddle.inference.Config`` + predictor, zero-copy handles)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ppinfer.config import apply_calls
from ppinfer.engines.base import Engine, register_engine
from ppinfer.errors import ModelFormatError
from ppinfer.paddle_env import import_paddle, paddle_env


@register_engine("analysis")
class AnalysisEngine(Engine):
    layouts = frozenset({"pir", "legacy", "seed", "uncombined"})

    def build(self) -> None:
        paddle = import_paddle()
        layout = self.source.layout
        if layout.ir == "pir" and not paddle_env().can_run_pir:
            raise ModelFormatError(
                f"{layout.program} is a PIR (.json) program, which needs Paddle 3; Paddle "
                f"{paddle_env().version} is installed: upgrade paddlepaddle or export with "
                "--format legacy."
            )
        if layout.kind == "uncombined":
            config = paddle.inference.Config(str(self._uncombined_dir(layout)))
        else:
            config = paddle.inference.Config(str(layout.program), str(layout.params))
        calls = self.config.inference_calls(
            self.source.input_name, self.source.input_shape, ir=layout.ir
        )
        apply_calls(config, calls)
        try:
            self.predictor = paddle.inference.create_predictor(config)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelFormatError(
                f"Paddle Inference cannot load the {layout.describe()} "
                f"({_first_line(exc)}): check that the program and parameters belong together."
            ) from None
        self.input_handle = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output_handle = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

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
        self.input_handle.reshape(list(batch.shape))
        self.input_handle.copy_from_cpu(batch)
        self.predictor.run()
        return self.output_handle.copy_to_cpu()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
