"""What every route shares: the loaded model, the batcher, the limits, and one function that
turns an encoded image into its result the way ``ppinfer predict`` does."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ppinfer.pipeline.decode import decode_image_bytes
from ppinfer.pipeline.postprocess import Result, results_from_probabilities
from ppinfer.serving.batcher import Batcher
from ppinfer.serving.metrics import Metrics

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024  # one request; base64 adds a third to an image


@dataclass(frozen=True)
class ServeOptions:
    """The server's limits and names (``ppinfer serve``'s options)."""

    max_batch: int = 8
    max_delay_ms: float = 5.0
    max_queue: int = 256
    timeout_s: float = 30.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    name: str | None = None  # the model's name in the v2 routes (default: the card's)
    allow_urls: bool = False  # PaddleX's `image` may be a URL the server fetches


class ServingContext:
    """One model behind the routes: decode off the event loop, batch, answer."""

    def __init__(self, predictor, options: ServeOptions) -> None:
        self.predictor = predictor
        self.engine = predictor.engine
        self.options = options
        self.model_name = options.name or self.engine.source.display_name
        self.metrics = Metrics()
        self._decoding = 0  # requests being decoded: the batcher waits for them
        self.batcher = Batcher(self._infer, max_batch=options.max_batch,
                               max_delay_s=options.max_delay_ms / 1000.0,
                               max_queue=options.max_queue,
                               on_batch=self.metrics.batch_size.observe,
                               coming=lambda: self._decoding)
        self.metrics.watch_queue(lambda: self.batcher.depth)
        self._decode = ThreadPoolExecutor(max(2, os.cpu_count() or 1),
                                          thread_name_prefix="ppinfer-decode")
        self.ready = False

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self.engine.probabilities(self.engine.execute(batch))

    def _tensor(self, data: bytes, name: str) -> np.ndarray:
        image = decode_image_bytes(data, name, self.predictor.max_pixels)
        return self.engine.organize([image])

    async def start(self) -> None:
        if not self.ready:
            self.batcher.start()
            self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.batcher.stop()
        self._decode.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """End the decode and engine threads without draining: for a host whose event loop
        is gone and that never ran the app's lifespan (a mounted app, docs/serving.md)."""
        self.ready = False
        self._decode.shutdown(wait=False, cancel_futures=True)
        self.batcher.close()

    async def classify(self, data: bytes, name: str, top_k: int | None = None) -> Result:
        """The result ``ppinfer predict`` gives for this encoded image. Raises ImageError
        (unreadable), QueueFull, or TimeoutError (waited longer than the timeout)."""
        loop = asyncio.get_running_loop()
        await self.start()  # mounted in another app, whose lifespan never started this one

        async def run() -> Result:
            self._decoding += 1
            try:
                tensor = await loop.run_in_executor(self._decode, self._tensor, data, name)
            finally:
                self._decoding -= 1
            scores = await self.batcher.submit(tensor)
            k = top_k or self.engine.config.top_k
            labels = self.engine.source.labels_for(scores.shape[-1])
            return results_from_probabilities([name], scores[None, :], k, labels)[0]

        return await asyncio.wait_for(run(), self.options.timeout_s)
