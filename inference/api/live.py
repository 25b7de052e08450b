"""GET /live: the browser live view (FLASHHEAD_LIVE_VIEW=1; off by default).

Static files only, no secret in them: the page asks the person for the token and sends it in an
Authorization header (the photo upload) and in `start` (the stream), never in a URL. Served with a
Content-Security-Policy that lets the page talk to this server only.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

FILES = {"index.html": "text/html; charset=utf-8", "live.js": "text/javascript; charset=utf-8",
         "pcm-worklet.js": "text/javascript; charset=utf-8"}
HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                                "connect-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; "
                                "frame-ancestors 'none'"),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
PATHS = ("/live", "/live/")


async def page(request: Request) -> Response:
    name = request.path_params.get("name", "index.html")
    if name not in FILES:
        return Response(status_code=404)
    body = resources.files("inference.live").joinpath(name).read_bytes()
    return Response(body, media_type=FILES[name], headers=HEADERS)
