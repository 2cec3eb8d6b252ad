"""The Open Inference Protocol (KServe v2, Triton's HTTP API), as ``tritonclient`` speaks it.

Input ``image``: BYTES, shape [N], each element one encoded image file, in the JSON body or in
the binary-data extension (``Inference-Header-Content-Length``: the JSON header, then each
input's ``binary_data_size`` bytes; a BYTES element there is a 4-byte little-endian length and
its bytes). Outputs, as JSON: ``scores`` FP32 [N, k], ``class_ids`` INT64 [N, k],
``label_names`` BYTES [N, k]. ``parameters.top_k`` sets k (default the server's --top-k).
"""


import asyncio
import base64
import json
import struct
from typing import Optional

from ppinfer.serving.failures import CAUGHT, describe

HEADER_LENGTH = "inference-header-content-length"
OUTPUTS = (("scores", "FP32"), ("class_ids", "INT64"), ("label_names", "BYTES"))


class BadRequest(ValueError):
    pass


def add_routes(app, context) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse

    def not_found(name: str) -> JSONResponse:
        return JSONResponse({"error": f"Unknown model {name!r}: this server serves "
                                      f"{context.model_name!r}."}, 404)

    @app.get("/v2")
    async def server_metadata() -> dict:
        from ppinfer import __version__

        return {"name": "ppinfer", "version": __version__, "extensions": ["binary_tensor_data"]}

    @app.get("/v2/health/live")
    async def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        return JSONResponse({"ready": context.ready}, 200 if context.ready else 503)

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> JSONResponse:
        if name != context.model_name:
            return not_found(name)
        return JSONResponse({"name": name, "ready": context.ready},
                            200 if context.ready else 503)

    @app.get("/v2/models/{name}")
    async def metadata(name: str) -> JSONResponse:
        if name != context.model_name:
            return not_found(name)
        return JSONResponse(_metadata(context))

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> JSONResponse:
        if name != context.model_name:
            return not_found(name)
        try:
            header, images = _parse(request.headers, await request.body())
            top_k = _top_k(header)
            results = await asyncio.gather(
                *(context.classify(data, f"image {i}", top_k) for i, data in enumerate(images)))
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except CAUGHT as exc:
            status, sentence, headers = describe(exc, context.options.timeout_s)
            return JSONResponse({"error": sentence}, status, headers)
        return JSONResponse(_response(name, header, results))


def _metadata(context) -> dict:
    k = -1
    return {"name": context.model_name, "versions": ["1"], "platform": "ppinfer",
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [{"name": n, "datatype": t, "shape": [-1, k]} for n, t in OUTPUTS]}


def _parse(headers, body: bytes) -> tuple[dict, list[bytes]]:
    """The request's JSON header and the encoded images of its ``image`` input."""
    length = headers.get(HEADER_LENGTH)
    try:
        split = int(length) if length is not None else len(body)
        header = json.loads(body[:split])
    except ValueError:
        raise BadRequest("The body is not a v2 inference request (JSON header expected).") \
            from None
    binary = memoryview(body)[split:]
    images: Optional[list[bytes]] = None
    for spec in header.get("inputs") or []:
        size = (spec.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            chunk, binary = bytes(binary[:size]), binary[size:]
        if spec.get("name") != "image":
            continue
        if spec.get("datatype") != "BYTES":
            raise BadRequest('Input "image" must be BYTES: one encoded image file an element.')
        images = _elements(chunk) if size is not None else _json_elements(spec.get("data"))
    if images is None:
        raise BadRequest('The request has no input named "image" (BYTES, shape [N]).')
    if not images:
        raise BadRequest('Input "image" holds no image.')
    return header, images


def _elements(chunk: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(chunk):
        if at + 4 > len(chunk):
            raise BadRequest('Input "image" has a truncated BYTES element.')
        (size,) = struct.unpack_from("<I", chunk, at)
        out.append(chunk[at + 4: at + 4 + size])
        at += 4 + size
    return out


def _json_elements(data) -> list[bytes]:
    """BYTES elements given in JSON: strings (base64, as binary files cannot be JSON text)."""
    if not isinstance(data, list):
        raise BadRequest('Input "image" needs "data": a list of base64 strings, or binary data.')
    flat = [item for row in data for item in (row if isinstance(row, list) else [row])]
    try:
        return [base64.b64decode(item, validate=True) for item in flat]
    except (TypeError, ValueError):
        raise BadRequest('Input "image" data in JSON must be base64 strings.') from None


def _top_k(header: dict) -> Optional[int]:
    value = (header.get("parameters") or {}).get("top_k")
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise BadRequest('"parameters.top_k" must be a whole number of at least 1.')
    return value


def _response(name: str, header: dict, results) -> dict:
    k = len(results[0].class_ids)
    columns = {
        "scores": [float(s) for r in results for s in r.scores],
        "class_ids": [int(c) for r in results for c in r.class_ids],
        "label_names": [str(n) for r in results for n in r.label_names],
    }
    asked = [o.get("name") for o in header.get("outputs") or []] or [n for n, _ in OUTPUTS]
    return {"model_name": name, "model_version": "1", "id": header.get("id", ""),
            "outputs": [{"name": n, "datatype": t, "shape": [len(results), k],
                         "data": columns[n]} for n, t in OUTPUTS if n in asked]}
