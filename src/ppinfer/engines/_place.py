"""The Executor's device, from the resolved RunConfig (shared by the two executor engines)."""

from __future__ import annotations

from ppinfer.paddle_env import import_paddle


def executor_place(config):
    paddle = import_paddle()
    if config.use_gpu:  # unverified on a GPU: no GPU can run Paddle on the machines this was built on
        return paddle.CUDAPlace(config.gpu_id)
    return paddle.CPUPlace()
