"""The Executor's device, from the resolved RunConfig (shared by the two executor engines)."""

from __future__ import annotations

from ppinfer.runtime.paddle_import import import_paddle


def executor_place(config):
    paddle = import_paddle()
    # The GPU place is unverified on a GPU: none could run Paddle where ppinfer was built.
    if config.use_gpu:
        return paddle.CUDAPlace(config.gpu_id)
    return paddle.CPUPlace()
