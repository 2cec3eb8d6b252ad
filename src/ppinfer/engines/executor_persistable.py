"""``executor-persistable``: build the architecture's program, load a checkpoint, run it with
the static-graph Executor (as PaddleClas 1.x's ``tools/infer/infer.py`` does). No export step."""

from __future__ import annotations

import numpy as np

from ppinfer.checkpoints import load_checkpoint
from ppinfer.engines._place import executor_place
from ppinfer.engines.base import Engine, register_engine
from ppinfer.models import get_model
from ppinfer.models.program import build_static_model
from ppinfer.runtime.paddle_import import import_paddle


@register_engine("executor-persistable")
class ExecutorPersistableEngine(Engine):
    layouts = frozenset({"persistable", "pdparams"})
    needs_architecture = True
    runs_paddle_python = True
    summary = "static-graph Executor on the architecture + a checkpoint, no export (infer.py)"

    def build(self) -> None:
        paddle = import_paddle()
        source = self.source
        spec = get_model(source.model_name)
        # An export's card records the PaddleClas arguments it built and the distillation
        # part it took: the checkpoint it names is rebuilt the same way.
        card = source.card
        recorded = (card.provenance if card is not None and card.model_name is not None
                    and get_model(card.model_name).name == spec.name else {})
        given = recorded.get("arguments") or {}
        if not isinstance(given, dict):
            given = {}
        arguments = spec.arguments(given, {name: f"inference.yml's ppinfer.arguments.{name}"
                                           for name in given})
        self.model = build_static_model(spec, source.class_num or 1000, source.input_shape,
                                        arguments=arguments)
        self.model.executor = paddle.static.Executor(executor_place(self.config))
        part = recorded.get("checkpoint_part")
        state = load_checkpoint(source.checkpoint, spec, part if isinstance(part, str) else None)
        self.model.load_state(state, source=str(source.checkpoint))

    def execute(self, batch: np.ndarray) -> np.ndarray:
        return self.model.run(np.ascontiguousarray(batch, dtype=np.float32))
