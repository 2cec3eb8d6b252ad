"""PaddleX basic serving's image-classification contract, so a PaddleX client switches by URL.

``POST /image-classification`` with ``{"image": "<base64 of the file>", "topk": k}`` answers
``{"logId", "errorCode": 0, "errorMsg": "Success", "result": {"categories": [{"id", "name",
"score"}]}}``; an error is the same envelope without ``result``, ``errorCode`` the HTTP status
(as PaddleX's own server sends it, 422 for a request its schema refuses). ``GET /health``
answers ``errorMsg: "Healthy"``. The schema is PaddleX's
``paddlex.inference.serving.schemas.image_classification`` (tests/test_serve_paddlex.py checks
the answers with it). ``image`` may be a URL only when the server was started with
``--allow-urls``: by default no request makes the server fetch anything.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse

from ppinfer.serving.bodies import decode_base64, parse_json, read_body
from ppinfer.serving.state import ServeError, ServingState

INFER_PATH = "/image-classification"


def _log_id(payload: object) -> str:
    given = payload.get("logId") if isinstance(payload, dict) else None
    return given if isinstance(given, str) and 0 < len(given) <= 128 else str(uuid.uuid4())


def envelope(log_id: str, error: ServeError | None = None, result: dict | None = None):
    if error is not None:
        body = {"logId": log_id, "errorCode": error.status, "errorMsg": error.message}
        return JSONResponse(body, status_code=error.status, headers=error.headers)
    return JSONResponse({"logId": log_id, "errorCode": 0, "errorMsg": "Success",
                         "result": result})


async def infer(request: Request) -> JSONResponse:
    state: ServingState = request.app.state.ppinfer
    seen: dict = {}

    async def work(ticket) -> JSONResponse:
        payload = parse_json(await read_body(request, state.options.max_body_bytes))
        seen["payload"] = payload
        image, top_k = _fields(payload, state)
        data = await _image_bytes(image, state)
        result = await state.classify(ticket, data, "The 'image' field", top_k)
        categories = [{"id": c, "name": n, "score": s}
                      for c, n, s in zip(result.class_ids, result.label_names, result.scores)]
        return envelope(_log_id(payload), result={"categories": categories})

    return await state.handle(work, lambda err: envelope(_log_id(seen.get("payload")), err))


def _fields(payload: object, state: ServingState) -> tuple[str, int]:
    if not isinstance(payload, dict):
        raise ServeError(422, "The request body must be a JSON object with an 'image' field.")
    image = payload.get("image")
    if not isinstance(image, str) or not image:
        raise ServeError(422, "The request needs 'image': the image file in base64 (or its "
                              "URL where the server allows URLs).")
    top_k = payload.get("topk")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 1):
        raise ServeError(422, f"'topk' must be a whole number greater than 0, not {top_k!r}.")
    return image, state.check_top_k(top_k)


async def _image_bytes(image: str, state: ServingState) -> bytes:
    if image.startswith(("http://", "https://")):
        if not state.options.allow_urls:
            raise ServeError(400, "This server does not fetch URLs (start it with "
                                  "--allow-urls to allow that): send the image in base64.")
        from ppinfer.serving.fetch import fetch_image

        return await fetch_image(image, state.max_image_bytes, state.options.timeout_s)
    return decode_base64(image, "'image'")


async def health(request: Request) -> JSONResponse:
    state: ServingState = request.app.state.ppinfer
    if not state.ready:
        error = ServeError(503, "The server is shutting down.")
        return envelope(str(uuid.uuid4()), error)
    return JSONResponse({"logId": str(uuid.uuid4()), "errorCode": 0, "errorMsg": "Healthy"})
