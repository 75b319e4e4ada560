"""The web app: its one HTML page on every page route and its static assets under /static/, from memory."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from wren.core.errors import NotFound

WEB_ROOT = Path(__file__).with_name("web")
# Every address a user may bookmark or share; each answers the same page, which routes in the browser.
PAGE_ROUTES = ("/", "/movies/{item_id}", "/users/{user_id}")
# Addresses browsers ask for on their own, answered with a static file (the icon is an SVG whatever the name).
WELL_KNOWN = {"/favicon.ico": "favicon.svg"}
CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
# Same-origin only: no CDN, no inline script or style; the app works with no network.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
COMMON_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",  # cached, but revalidated by ETag so a new release is seen at once
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str

    @classmethod
    def load(cls, path: Path) -> Asset:
        body = path.read_bytes()
        return cls(body, CONTENT_TYPES[path.suffix], '"' + hashlib.sha256(body).hexdigest()[:20] + '"')

    def response(self, request: web.Request) -> web.Response:
        headers = {**COMMON_HEADERS, "ETag": self.etag}
        if self.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(body=self.body, headers={**headers, "Content-Type": self.content_type})


def load_assets(root: Path) -> dict[str, Asset]:
    """Every file under `root`/static with a known type, keyed by its path below static/ ("views/home.js")."""
    static = root / "static"
    return {
        path.relative_to(static).as_posix(): Asset.load(path)
        for path in sorted(static.rglob("*"))
        if path.is_file() and path.suffix in CONTENT_TYPES
    }


def _fixed(asset: Asset) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        return asset.response(request)

    return serve


def add_webapp(app: web.Application, root: Path = WEB_ROOT) -> None:
    """Registers the page routes and /static/{path}; fails at start-up, not per request, if a file is missing."""
    page = _fixed(Asset.load(root / "index.html"))
    assets = load_assets(root)

    async def serve_asset(request: web.Request) -> web.Response:
        name = request.match_info["path"]
        asset = assets.get(name)
        if asset is None:
            raise NotFound(f"no static file {name!r}")
        return asset.response(request)

    for route in PAGE_ROUTES:
        app.router.add_get(route, page)
    for route, name in WELL_KNOWN.items():
        app.router.add_get(route, _fixed(assets[name]))
    app.router.add_get("/static/{path:.+}", serve_asset)
