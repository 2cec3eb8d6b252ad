"""``executor-inference``: the static-graph Executor loads a saved inference model and runs it
(as PaddleClas 1.x's ``tools/infer/py_infer.py`` does): PIR ``.json``, ``.pdmodel``,
PaddleClas 1.x ``model`` + ``params`` and the uncombined ``model`` + one file per variable."""

from __future__ import annotations

import numpy as np

from ppinfer.engines._place import executor_place
from ppinfer.engines.base import Engine, first_line, register_engine
from ppinfer.errors import ModelFormatError
from ppinfer.runtime.paddle_env import program_context
from ppinfer.runtime.paddle_import import import_paddle


@register_engine("executor-inference")
class ExecutorInferenceEngine(Engine):
    layouts = frozenset({"pir", "legacy", "seed", "uncombined"})
    summary = "static-graph Executor on a saved inference model (PaddleClas 1.x py_infer.py)"
    auto_candidate = False  # no IR passes: 3-5x slower than analysis here (BENCHMARKS.md)
    runs_paddle_python = True

    def build(self) -> None:
        paddle = import_paddle()
        layout = self.source.layout
        self.scope = paddle.static.Scope()
        self.executor = paddle.static.Executor(executor_place(self.config))
        if layout.kind in ("pir", "legacy"):
            args, kwargs = (str(layout.program.with_suffix("")),), {}
        else:  # PaddleClas 1.x model + params / per-variable: a directory with file names
            kwargs = {"model_filename": layout.program.name}
            if layout.params is not None:
                kwargs["params_filename"] = layout.params.name
            args = (str(layout.root),)
        with self._guard():
            try:
                program, feeds, fetches = paddle.static.load_inference_model(
                    *args, self.executor, **kwargs
                )
            except (RuntimeError, ValueError, OSError) as exc:
                raise ModelFormatError(
                    f"The Executor cannot load the {layout.describe()} ({first_line(exc)}): "
                    "check that the program and parameters belong together."
                ) from None
            self.program = program
            if layout.ir == "legacy":  # CompiledProgram only takes legacy programs
                self.program = paddle.static.CompiledProgram(program)
        self.feed_name = feeds[0]
        self.fetch = fetches

    def _guard(self):
        return program_context(self.source.layout.ir, self.scope)

    def execute(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self._guard():
            try:
                (out,) = self.executor.run(self.program, feed={self.feed_name: batch},
                                           fetch_list=self.fetch)
            except (RuntimeError, ValueError) as exc:
                raise ModelFormatError(
                    f"The Executor cannot run the {self.source.layout.describe()} on a batch of "
                    f"shape {list(batch.shape)} ({first_line(exc)}): check the model's input "
                    "size and that its parameters belong to its program."
                ) from None
        return np.asarray(out)
