"""The Open Inference Protocol (KServe v2; Triton's HTTP API), with Triton's binary extension.

Input ``image``: BYTES, shape [N], each element one encoded image file: raw bytes through the
binary extension (what ``tritonclient`` sends), or base64 strings in plain JSON. Outputs
``scores`` (FP32 [N, k]), ``class_ids`` (INT64 [N, k]) and ``label_names`` (BYTES [N, k]);
``k`` is the request's ``parameters.top_k``, else the server's ``--top-k``. Outputs come back
in binary when the request asks (``binary_data_output``, or an output's ``binary_data``), as
Triton does, else as JSON. Errors: ``{"error": "one sentence"}`` with the HTTP status.
"""

from __future__ import annotations

import asyncio
import json
import struct

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ppinfer import __version__
from ppinfer.serving.bodies import decode_base64, parse_json, read_body
from ppinfer.serving.state import ServeError, ServingState

HEADER_LENGTH = "Inference-Header-Content-Length"
OUTPUTS = {"scores": "FP32", "class_ids": "INT64", "label_names": "BYTES"}
MAX_IMAGES = 256
"""Images one infer request may carry (its body limit bounds their bytes)."""


def _error(exc: ServeError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


def _state(request: Request) -> ServingState:
    return request.app.state.ppinfer


def _check_model(state: ServingState, name: str, version: str | None = None) -> None:
    if name != state.model_name:
        raise ServeError(404, f"Unknown model {name!r}: this server serves "
                              f"{state.model_name!r}.")
    if version not in (None, "", "1"):
        raise ServeError(404, f"Model {name!r} has only version '1', not {version!r}.")


async def live(request: Request) -> JSONResponse:
    return JSONResponse({"live": True})


async def ready(request: Request) -> JSONResponse:
    is_ready = _state(request).ready
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


async def server_metadata(request: Request) -> JSONResponse:
    return JSONResponse({"name": "ppinfer", "version": __version__,
                         "extensions": ["binary_tensor_data"]})


async def model_ready(request: Request) -> JSONResponse:
    state = _state(request)
    try:
        _check_model(state, request.path_params["name"], request.path_params.get("version"))
    except ServeError as exc:
        return _error(exc)
    return JSONResponse({"name": state.model_name, "ready": state.ready},
                        status_code=200 if state.ready else 503)


async def model_metadata(request: Request) -> JSONResponse:
    state = _state(request)
    try:
        _check_model(state, request.path_params["name"], request.path_params.get("version"))
    except ServeError as exc:
        return _error(exc)
    return JSONResponse({
        "name": state.model_name, "versions": ["1"], "platform": f"ppinfer_{state.engine.name}",
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": name, "datatype": dtype, "shape": [-1, -1]}
                    for name, dtype in OUTPUTS.items()],
    })


async def infer(request: Request) -> Response:
    state = _state(request)

    async def work(ticket) -> Response:
        _check_model(state, request.path_params["name"], request.path_params.get("version"))
        body = await read_body(request, state.options.max_body_bytes)
        header, images = parse_request(body, request.headers.get(HEADER_LENGTH))
        top_k = state.check_top_k((header.get("parameters") or {}).get("top_k"))
        tasks = [asyncio.ensure_future(state.classify(ticket, data, f"image[{i}]", top_k))
                 for i, data in enumerate(images)]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:  # one image failed the request: the others need not run
            for task in tasks:
                task.cancel()
            raise
        return render(header, results, state.model_name)

    return await state.handle(work, _error)


def parse_request(body: bytes, header_length: str | None) -> tuple[dict, list[bytes]]:
    """The request's JSON header and its images' bytes."""
    binary = b""
    if header_length is not None:
        if not header_length.isdigit() or int(header_length) > len(body):
            raise ServeError(400, f"{HEADER_LENGTH} is not a length within the body.")
        body, binary = body[:int(header_length)], body[int(header_length):]
    header = parse_json(body)
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise ServeError(400, "The request must be a JSON object with an 'inputs' list.")
    tensors = header["inputs"]
    if len(tensors) != 1 or not isinstance(tensors[0], dict):
        raise ServeError(400, "The request must have exactly one input, 'image'.")
    tensor = tensors[0]
    if tensor.get("name") != "image" or tensor.get("datatype") != "BYTES":
        raise ServeError(400, "The input must be 'image', datatype BYTES (one encoded image "
                              "file per element).")
    count = _count(tensor.get("shape"))
    size = (tensor.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != len(binary):
            raise ServeError(400, "The input's binary_data_size does not match the bytes "
                                  "after the JSON header.")
        images = _split_bytes(binary)
    else:
        data = tensor.get("data")
        flat = [item for row in data for item in (row if isinstance(row, list) else [row])] \
            if isinstance(data, list) else None
        if not flat:
            raise ServeError(400, "The input 'image' has no data (JSON list of base64 "
                                  "strings, or binary_data_size with the bytes after it).")
        images = [decode_base64(item, f"image[{i}]") for i, item in enumerate(flat)]
    if len(images) != count:
        raise ServeError(400, f"The input's shape says {count} images and it holds "
                              f"{len(images)}.")
    return header, images


def _count(shape: object) -> int:
    if (not isinstance(shape, list) or not shape or len(shape) > 2
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
            or (len(shape) == 2 and shape[1] != 1)):
        raise ServeError(400, "The input's shape must be [N] (or [N, 1]): N images.")
    if not 1 <= shape[0] <= MAX_IMAGES:
        raise ServeError(400, f"One request carries 1 to {MAX_IMAGES} images, not {shape[0]}.")
    return shape[0]


def _split_bytes(raw: bytes) -> list[bytes]:
    """Triton's BYTES serialization: each element a 4-byte little-endian length, then it."""
    items, at = [], 0
    while at < len(raw):
        if at + 4 > len(raw) or len(items) >= MAX_IMAGES:
            raise ServeError(400, "The input's binary data is not a sequence of "
                                  "length-prefixed elements.")
        (size,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + size > len(raw):
            raise ServeError(400, "An element of the input's binary data ends after the body.")
        items.append(raw[at:at + size])
        at += size
    return items


def render(header: dict, results: list, model_name: str) -> Response:
    """The response: the requested outputs (all three by default), binary where asked."""
    k = min(len(r.class_ids) for r in results)
    values = {
        "scores": np.asarray([r.scores[:k] for r in results], dtype=np.float32),
        "class_ids": np.asarray([r.class_ids[:k] for r in results], dtype=np.int64),
        "label_names": [[n.encode("utf-8") for n in r.label_names[:k]] for r in results],
    }
    wanted, all_binary = _wanted(header)
    outputs, chunks = [], []
    for name, binary in wanted:
        entry = {"name": name, "datatype": OUTPUTS[name], "shape": [len(results), k]}
        if binary or all_binary:
            raw = _binary(values[name])
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = _json_data(values[name])
        outputs.append(entry)
    answer = {"model_name": model_name, "model_version": "1", "outputs": outputs}
    if isinstance(header.get("id"), str):
        answer["id"] = header["id"]
    text = json.dumps(answer, ensure_ascii=False).encode("utf-8")
    if not chunks:
        return Response(text, media_type="application/json")
    return Response(b"".join([text, *chunks]), media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(text))})


def _wanted(header: dict) -> tuple[list[tuple[str, bool]], bool]:
    all_binary = bool((header.get("parameters") or {}).get("binary_data_output"))
    asked = header.get("outputs")
    if not asked:
        return [(name, False) for name in OUTPUTS], all_binary
    wanted = []
    for output in asked:
        name = output.get("name") if isinstance(output, dict) else None
        if name not in OUTPUTS:
            raise ServeError(400, f"Unknown output {name!r}: the outputs are "
                                  f"{', '.join(OUTPUTS)}.")
        wanted.append((name, bool((output.get("parameters") or {}).get("binary_data"))))
    return wanted, all_binary


def _binary(value) -> bytes:
    if isinstance(value, np.ndarray):
        return value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
    return b"".join(struct.pack("<I", len(item)) + item for row in value for item in row)


def _json_data(value) -> list:
    if isinstance(value, np.ndarray):
        return value.reshape(-1).tolist()
    return [item.decode("utf-8") for row in value for item in row]
