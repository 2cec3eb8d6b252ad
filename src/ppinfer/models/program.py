"""The architecture as a static inference program, with a checkpoint loaded into its scope.

Shared by ``export`` (which saves it) and the ``executor-persistable`` engine (which runs it).
The program is built in inference mode with softmax appended; input ``x`` is ``[None, C, H, W]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ppinfer.checkpoints import load_checkpoint
from ppinfer.checkpoints.namings import fit_naming
from ppinfer.models import ModelSpec
from ppinfer.models.arguments import ArchArguments
from ppinfer.runtime.paddle_env import ir_guard, paddle_env, program_context, static_mode
from ppinfer.runtime.paddle_import import import_paddle

INPUT_NAME = "x"


@dataclass
class StaticModel:
    spec: ModelSpec
    class_num: int
    input_shape: tuple[int, int, int]
    ir: str  # 'pir' | 'legacy'
    program: Any
    feed: Any
    fetch: Any
    scope: Any
    executor: Any
    expected: dict[str, tuple[int, ...]]  # variable name -> shape
    structured: dict[str, str]  # the Layer's state_dict key -> variable name
    arguments: ArchArguments | None = None  # PaddleClas's constructor arguments it was built with

    def guard(self):
        """Context for running or saving this program (its IR and its scope)."""
        return program_context(self.ir, self.scope)

    def load_state(self, state: dict[str, np.ndarray], source: str) -> None:
        """Copy ``state`` into the scope, after checking it fits the program's variables."""
        paddle = import_paddle()
        fitted = fit_naming(
            state, self.expected, self.structured, self.spec.namings,
            source=source, model_name=self.spec.name,
        )
        place = paddle.CPUPlace()
        for name, array in fitted.items():
            tensor = self.scope.find_var(name).get_tensor()
            dtype = np.asarray(tensor).dtype if tensor._is_initialized() else np.float32
            tensor.set(np.ascontiguousarray(array, dtype=dtype), place)

    def load_checkpoint(self, path: str | Path) -> None:
        self.load_state(load_checkpoint(path, self.spec), source=str(path))

    def run(self, batch: np.ndarray) -> np.ndarray:
        with self.guard():
            (out,) = self.executor.run(
                self.program, feed={INPUT_NAME: batch}, fetch_list=[self.fetch]
            )
        return np.asarray(out)


def build_static_model(
    spec: ModelSpec,
    class_num: int = 1000,
    input_shape: tuple[int, int, int] | None = None,
    ir: str | None = None,
    arguments: ArchArguments | None = None,
) -> StaticModel:
    """Build ``spec`` as a static program in ``ir`` (default: native), parameters initialised;
    ``arguments``: PaddleClas's constructor arguments (default: PaddleClas's defaults)."""
    paddle = import_paddle()
    ir = ir or paddle_env().native_format
    input_shape = tuple(input_shape or spec.input_shape)
    from ppinfer.runtime.quiet import captured_output

    # Paddle logs while it builds and first runs a program ("PIR not support input out tensor",
    # "New Executor is Running"): kept off the user's stderr unless --verbose.
    with captured_output(), static_mode(), ir_guard(ir):
        main, startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(main, startup), paddle.utils.unique_name.guard():
            x = paddle.static.data(INPUT_NAME, [None, *input_shape], "float32")
            net = spec.build(class_num=class_num, arguments=arguments)
            net.eval()
            prob = paddle.nn.functional.softmax(net(x), axis=-1)
        params = net.state_dict()
        expected = {v.name: tuple(int(d) for d in v.shape) for v in params.values()}
        structured = {key: v.name for key, v in params.items()}
        scope = paddle.static.Scope()
        executor = paddle.static.Executor(paddle.CPUPlace())
        with paddle.static.scope_guard(scope):
            executor.run(startup)
    return StaticModel(
        spec, class_num, input_shape, ir, main, x, prob, scope, executor, expected, structured,
        arguments,
    )
