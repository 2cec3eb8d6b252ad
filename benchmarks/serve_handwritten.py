"""The server a user would write by hand: FastAPI, one ``Predictor.predict`` per request, no
batching. The baseline ``benchmarks/serve_load.py`` measures ``ppinfer serve`` against.

    python benchmarks/serve_handwritten.py --port 8081 --engine analysis

It decodes as a user would (``cv2.imdecode``, BGR to RGB) in FastAPI's thread pool, so
requests overlap in decoding while the shared Predictor runs one image at a time. The same
uvicorn (with httptools and uvloop when installed) hosts it, on loopback.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from starlette.concurrency import run_in_threadpool

import ppinfer


def make_app(engine: str | None) -> FastAPI:
    predictor = ppinfer.load(engine=engine)
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        data = await request.body()
        return await run_in_threadpool(_classify, predictor, data)

    return app


def _classify(predictor, data: bytes) -> dict:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise HTTPException(400, "not an image")
    return predictor.predict([image[:, :, ::-1]])[0].to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--engine", default=None)
    args = parser.parse_args()
    uvicorn.run(make_app(args.engine), host="127.0.0.1", port=args.port, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
