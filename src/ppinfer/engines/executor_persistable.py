"""``executor-persistable``: build the architecture's program, load a checkpoint, run it with
the static-graph Executor (as PaddleClas 1.x's ``tools/infer/infer.py`` does). No export step."""

from __future__ import annotations

import numpy as np

from ppinfer.engines._place import executor_place
from ppinfer.engines.base import Engine, register_engine
from ppinfer.models import get_model
from ppinfer.paddle_env import import_paddle
from ppinfer.program import build_static_model


@register_engine("executor-persistable")
class ExecutorPersistableEngine(Engine):
    layouts = frozenset({"persistable", "pdparams"})
    needs_architecture = True
    summary = "static-graph Executor on the architecture + a checkpoint, no export (infer.py)"

    def build(self) -> None:
        paddle = import_paddle()
        source = self.source
        spec = get_model(source.model_name)
        card = source.card
        # An export's card records the arguments it built the architecture with (a training
        # config's stride_list, dropout_prob, ...): building again, build the same.
        arguments = spec.resolve_arguments(
            card.architecture_arguments if card else {},
            where=f"{source.layout.card if source.layout else 'the model card'}'s "
                  "ppinfer.architecture_arguments",
        )
        self.model = build_static_model(spec, source.class_num or 1000, source.input_shape,
                                        arguments=arguments)
        self.model.executor = paddle.static.Executor(executor_place(self.config))
        self.model.load_checkpoint(source.checkpoint, part=card.checkpoint_part if card else None)

    def execute(self, batch: np.ndarray) -> np.ndarray:
        return self.model.run(np.ascontiguousarray(batch, dtype=np.float32))
