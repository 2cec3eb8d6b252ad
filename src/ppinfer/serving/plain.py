"""``POST /predict``: the image file as the body (``curl --data-binary @cat.jpg``) or as a
multipart upload; the answer is the JSON object ``ppinfer predict --json`` prints for it."""


from typing import Optional

from ppinfer.serving.failures import CAUGHT, describe

DEFAULT_NAME = "upload"


def add_routes(app, context) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse

    @app.post("/predict")
    async def predict(request: Request, top_k: Optional[int] = None) -> JSONResponse:
        name = request.headers.get("x-file-name") or DEFAULT_NAME
        try:
            data, name = await _image_bytes(request, name)
            result = await context.classify(data, name, _positive(top_k))
        except CAUGHT as exc:
            status, sentence, headers = describe(exc, context.options.timeout_s)
            return JSONResponse({"file_name": name, "error": sentence}, status, headers)
        except ValueError as exc:
            return JSONResponse({"file_name": name, "error": str(exc)}, 400)
        return JSONResponse(result.to_json_dict())


async def _image_bytes(request, name: str) -> tuple[bytes, str]:
    """The raw body, or the first file of a multipart form (named after its file name)."""
    kind = request.headers.get("content-type", "")
    if not kind.startswith("multipart/form-data"):
        return await request.body(), name
    form = await request.form()
    for value in form.values():
        if hasattr(value, "read"):
            return await value.read(), _basename(value.filename) or name
    raise ValueError("The multipart form holds no file: upload the image as a file field.")


def _basename(filename: Optional[str]) -> Optional[str]:
    """Only the file's own name: a client's path never names anything on the server."""
    if not filename:
        return None
    return filename.replace("\\", "/").rsplit("/", 1)[-1] or None


def _positive(top_k: Optional[int]) -> Optional[int]:
    if top_k is not None and top_k < 1:
        raise ValueError("top_k must be at least 1.")
    return top_k
