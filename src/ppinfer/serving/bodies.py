"""Request bodies read with a bound: a body over the limit is a 413 before it is read whole.

A declared ``Content-Length`` over the limit is refused before one byte of the body is read;
a body without one (chunked) is counted as it streams and refused at the first chunk past the
limit. Either way the server holds at most the limit in memory for one request.
"""

from __future__ import annotations

import base64
import binascii
import json

from starlette.requests import Request

from ppinfer.serving.state import ServeError


def too_large(limit: int) -> ServeError:
    return ServeError(413, f"The request body is over the server's limit of {limit} bytes "
                           "(--max-body-bytes).", {"Connection": "close"})


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes (else :func:`too_large`)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ServeError(400, "The Content-Length header is not a number.")
        if int(declared) > limit:
            raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def replayed(request: Request, body: bytes) -> Request:
    """A request whose body is ``body`` (already read within the limit), for parsers that read
    the stream themselves (multipart forms)."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


def parse_json(body: bytes) -> object:
    """A JSON body, or a 400 in one sentence."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ServeError(400, "The request body is not UTF-8 JSON.") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ServeError(400, f"The request body is not valid JSON ({exc}).") from None
    except RecursionError:  # the C parser refuses nesting past Python's recursion limit
        raise ServeError(400, "The request body's JSON nests too deeply.") from None


def decode_base64(text: object, what: str) -> bytes:
    """Standard or URL-safe base64 (padding optional) to bytes, or a 400 naming ``what``."""
    if not isinstance(text, str):
        raise ServeError(400, f"{what} must be a string of base64, not {type(text).__name__}.")
    compact = "".join(text.split())
    if compact.startswith("data:") and "," in compact:  # a data: URL from a browser
        compact = compact.split(",", 1)[1]
    compact += "=" * (-len(compact) % 4)
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact)
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ServeError(400, f"{what} is not base64 of an image file (and not a URL).") from None
