"""PaddleX basic serving's image-classification contract, so a PaddleX client changes only the
URL: ``POST /image-classification`` with ``{"image": "<base64 of the file>", "topk": k}`` ->
``{"logId", "errorCode": 0, "errorMsg": "Success", "result": {"categories": [{"id", "name",
"score"}]}}``; a failure is the same envelope without ``result``, ``errorCode`` the HTTP status.
An ``image`` that is a URL is fetched only when the server was started with ``--allow-urls``.
"""


import base64
import binascii
import uuid
from typing import Optional

from ppinfer.serving.failures import CAUGHT, describe

ENDPOINT = "/image-classification"
URL_TIMEOUT_S = 10.0


def add_routes(app, context) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse

    @app.post(ENDPOINT)
    async def classify(request: Request) -> JSONResponse:
        log_id = str(uuid.uuid4())

        def failed(status: int, sentence: str, headers: Optional[dict] = None) -> JSONResponse:
            return JSONResponse({"logId": log_id, "errorCode": status, "errorMsg": sentence},
                                status, headers)

        try:
            image, top_k = _parse(await request.json())
        except ValueError as exc:
            return failed(422, str(exc))
        try:
            data = await _image_data(image, context)
            result = await context.classify(data, "the image", top_k)
        except ValueError as exc:
            return failed(400, str(exc))
        except CAUGHT as exc:
            return failed(*describe(exc, context.options.timeout_s))
        categories = [{"id": int(i), "name": str(n), "score": float(s)}
                      for i, n, s in zip(result.class_ids, result.label_names, result.scores)]
        return JSONResponse({"logId": log_id, "errorCode": 0, "errorMsg": "Success",
                             "result": {"categories": categories}})


def _parse(body) -> tuple[str, Optional[int]]:
    if not isinstance(body, dict) or not isinstance(body.get("image"), str):
        raise ValueError('The body must be a JSON object with "image": the base64 of the file.')
    top_k = body.get("topk")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool)
                              or top_k < 1):
        raise ValueError('"topk" must be a whole number of at least 1.')
    return body["image"], top_k


async def _image_data(image: str, context) -> bytes:
    if image.startswith(("http://", "https://")):
        if not context.options.allow_urls:
            raise ValueError("This server fetches no URLs (start it with --allow-urls): send "
                             "the image's bytes as base64.")
        return await _fetch(image, context.options.max_body_bytes)
    try:
        return base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError('"image" is neither base64 nor a URL: send the file\'s bytes as '
                         "base64.") from None


async def _fetch(url: str, limit: int) -> bytes:
    """The URL's content, at most ``limit`` bytes, within URL_TIMEOUT_S (only with
    --allow-urls)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=URL_TIMEOUT_S, follow_redirects=True) as client, \
                client.stream("GET", url) as response:
            response.raise_for_status()
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ValueError(f"The image at {url} is over {limit} bytes.")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise ValueError(f"Cannot fetch {url}: {exc}.") from None
