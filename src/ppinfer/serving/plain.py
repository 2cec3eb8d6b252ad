"""``POST /predict``: the image file as the body (``curl --data-binary @cat.jpg``) or a multipart
upload (``curl -F file=@cat.jpg``), answered with the JSON object ``ppinfer predict --json``
prints for that file: ``{file_name, class_ids, scores, label_names}``, or ``{file_name,
error}`` with the HTTP status. ``?top_k=N`` asks for another top-k.

``file_name`` is the upload's own name (``<body>`` for a raw body), only echoed: nothing on
the server is ever opened by a name a request gives.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse

from ppinfer.pipeline.postprocess import printable
from ppinfer.serving.bodies import read_body, replayed
from ppinfer.serving.state import ServeError, ServingState

RAW_NAME = "<body>"
MAX_NAME = 255


async def predict(request: Request) -> JSONResponse:
    state: ServingState = request.app.state.ppinfer
    named = {"file_name": RAW_NAME}

    async def work(ticket) -> JSONResponse:
        top_k = state.check_top_k(_query_top_k(request))
        body = await read_body(request, state.options.max_body_bytes)
        data, named["file_name"] = await _upload(request, body)
        result = await state.classify(ticket, data, _message_name(named["file_name"]), top_k)
        result.file_name = named["file_name"]
        return JSONResponse(result.to_json_dict())

    def failed(exc: ServeError) -> JSONResponse:
        body = {"file_name": printable(named["file_name"]), "error": exc.message}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    return await state.handle(work, failed)


def _query_top_k(request: Request) -> int | None:
    text = request.query_params.get("top_k")
    if text is None:
        return None
    if not text.isdigit():
        raise ServeError(400, f"top_k must be a whole number from 1, not {text[:20]!r}.")
    return int(text)


def _message_name(file_name: str) -> str:
    return "The request body" if file_name == RAW_NAME else printable(file_name)


async def _upload(request: Request, body: bytes) -> tuple[bytes, str]:
    """The image's bytes and name: the multipart form's file part, else the body itself."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "multipart/form-data":
        return body, RAW_NAME
    try:
        form = await replayed(request, body).form(max_files=1, max_fields=8)
    except Exception as exc:  # noqa: BLE001 - the parser's many errors: one sentence
        raise ServeError(400, f"The multipart upload cannot be read ({exc}).") from None
    try:
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        if not files:
            raise ServeError(400, "The multipart upload holds no file: send the image as a "
                                  "file part (curl -F file=@cat.jpg).")
        upload = files[0]
        name = (upload.filename or "upload")[:MAX_NAME]
        return await upload.read(), name
    finally:
        await form.close()
