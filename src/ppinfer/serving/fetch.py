"""``image`` given as a URL, fetched only where the server was started with ``--allow-urls``.

Off by default: a server that fetches what a request names can be pointed at the machines
behind it. When allowed: http and https only (redirects too), at most the image-byte limit
read, within the request's time limit, in a thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

from ppinfer.serving.state import ServeError


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not newurl.startswith(("http://", "https://")):
            raise urllib.error.URLError(f"a redirect to {newurl[:80]!r}, which is not http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects())


def _fetch(url: str, max_bytes: int, timeout: float) -> bytes:
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ServeError(400, f"Cannot fetch the image URL ({reason}).") from None
    if len(data) > max_bytes:
        raise ServeError(400, f"The image at the URL is over the limit of {max_bytes} bytes.")
    return data


async def fetch_image(url: str, max_bytes: int, timeout: float) -> bytes:
    """The bytes at ``url`` (a 400 in one sentence when they cannot be had)."""
    return await asyncio.get_running_loop().run_in_executor(None, _fetch, url, max_bytes,
                                                            timeout)
