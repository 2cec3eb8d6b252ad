"""Fit a checkpoint to an architecture's variables, naming every mismatch."""

from __future__ import annotations

import re

import numpy as np

from ppinfer.errors import CheckpointError

# Training-only state that checkpoints carry and inference never needs.
_TRAINING_STATE = re.compile(
    r"(_velocity_\d+$|_moment\d_\d+$|_beta\d_pow_acc_\d+$|^learning_rate|@LR_DECAY_COUNTER@"
    r"|num_batches_tracked$|^@|_fp32_master_\d+$)"
)
_LIST_AT_MOST = 8


def is_training_state(name: str) -> bool:
    """Optimizer/scheduler state that checkpoints carry and inference never needs."""
    return bool(_TRAINING_STATE.search(name))


def listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LIST_AT_MOST])
    return shown + (f" and {len(names) - _LIST_AT_MOST} more" if len(names) > _LIST_AT_MOST else "")


def match_state(
    expected: dict[str, tuple[int, ...]],
    state: dict[str, np.ndarray],
    source: str = "the checkpoint",
    model_name: str = "the architecture",
    file_keys: dict[str, str] | None = None,
) -> dict[str, np.ndarray]:
    """Return ``state`` restricted to ``expected`` names, as float32 where expected.

    Raises :class:`CheckpointError` listing what is missing, unexpected or of the wrong shape; a
    classifier width mismatch gets the ``--class-num`` fix spelled out. ``file_keys`` maps a
    variable name to the file's own key for it: a message names what the user can find in
    the file (``fc.weight``), not ppinfer's variable (``fc_0.w_0``).
    """
    file_keys = file_keys or {}
    wrong = [
        (name, tuple(state[name].shape), tuple(shape))
        for name, shape in expected.items()
        if name in state and tuple(state[name].shape) != tuple(shape)
    ]
    if wrong:
        name, got, want = wrong[0]
        fix = "check --model-name matches the checkpoint"
        if len(got) == len(want) and got[:-1] == want[:-1] and len(wrong) <= 2:
            fix = f"pass --class-num {got[-1]}"
        elif len(got) == 1 and len(wrong) <= 2 and name.endswith(("b_0", "bias", "offset")):
            fix = f"pass --class-num {got[0]}"
        others = ""
        if len(wrong) > 1 and not fix.startswith("pass --class-num"):
            others = f" ({len(wrong) - 1} more variables differ too)"
        raise CheckpointError(
            f"{file_keys.get(name, name)} is {list(got)} in {source}, {model_name} makes "
            f"{list(want)}{others}: {fix}."
        )
    missing = [n for n in expected if n not in state]
    unexpected = [file_keys.get(n, n) for n in state
                  if n not in expected and not is_training_state(file_keys.get(n, n))]
    if missing:
        extra = f"; it has instead {listing(unexpected)}" if unexpected else ""
        raise CheckpointError(
            f"{source} lacks {len(missing)} of {model_name}'s {len(expected)} variables "
            f"({listing(missing)}){extra}: check --model-name matches the checkpoint."
        )
    if unexpected:
        raise CheckpointError(
            f"{source} has {len(unexpected)} variables {model_name} does not use "
            f"({listing(unexpected)}): check --model-name matches the checkpoint."
        )
    return {name: state[name] for name in expected}
