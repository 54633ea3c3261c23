"""The Threadline Explorer: a web UI at ``/explorer`` built on the admin API (``docs/admin.md``).

Its files live in ``static/`` inside the package (no build step): plain HTML,
CSS and ES modules. They are read once, at import, and served with a strict
Content-Security-Policy (no inline script or style, no other origin), so
message content, which the page only ever inserts as text, cannot run.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

__all__ = ["CSP", "routes"]

#: The Content-Security-Policy of every Explorer file.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _load() -> dict[str, tuple[bytes, str]]:
    folder = resources.files(__package__).joinpath("static")
    files: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


_FILES = _load()


def _serve(name: str) -> Response:
    found = _FILES.get(name)
    if found is None:
        return Response(b'{"error":{"code":"NotFound","message":"No such Explorer file."}}', status_code=404,
                        media_type="application/json; charset=utf-8", headers={"x-ms-error-code": "NotFound"})
    body, media_type = found
    return Response(body, media_type=media_type, headers=_HEADERS)


async def explorer_root(request: Request) -> Response:
    """``/explorer``: go to the page."""
    return RedirectResponse("/explorer/", status_code=308)


async def explorer_page(request: Request) -> Response:
    """``/explorer/``: the single page."""
    return _serve("index.html")


async def explorer_file(request: Request) -> Response:
    """``/explorer/<file>``: one of the page's scripts or styles."""
    return _serve(request.path_params["name"])


routes = [
    Route("/explorer", explorer_root, methods=["GET", "HEAD"]),
    Route("/explorer/", explorer_page, methods=["GET", "HEAD"]),
    Route("/explorer/{name}", explorer_file, methods=["GET", "HEAD"]),
]
