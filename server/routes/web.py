"""The web client: `/` serves web/index.html; `/web/...` its CSS and ES modules; `/web/vendor/...` its npm modules.

The vendor modules (socket.io-client, marked, DOMPurify, highlight.js) come from npm (`make run` runs `npm ci`
in web/), never from a CDN, and only the browser builds listed in VENDOR_FILES are served. Without them the
page cannot work, so `/` and `/web/vendor/...` answer 503 saying how to install them.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from aiohttp import web

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
VENDOR_DIR = PurePosixPath("node_modules")
HIGHLIGHT = "@highlightjs/cdn-assets/es"
HIGHLIGHT_LANGUAGES = ("bash", "javascript", "json", "python", "sql", "typescript", "xml", "yaml")
#: the browser ES modules the page imports (web/index.html's import map), by name: their paths under node_modules
VENDOR_FILES: Mapping[str, str] = MappingProxyType(
    {
        "socket.io.esm.min.js": "socket.io-client/dist/socket.io.esm.min.js",
        "socket.io.esm.min.js.map": "socket.io-client/dist/socket.io.esm.min.js.map",
        "marked.esm.js": "marked/lib/marked.esm.js",
        "purify.es.mjs": "dompurify/dist/purify.es.mjs",
        "highlight.core.min.js": f"{HIGHLIGHT}/core.min.js",
        **{f"highlight.{name}.min.js": f"{HIGHLIGHT}/languages/{name}.min.js" for name in HIGHLIGHT_LANGUAGES},
    }
)
CONTENT_TYPES: Mapping[str, str] = MappingProxyType(
    {
        ".html": "text/html; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8",
        ".map": "application/json",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".ico": "image/x-icon",
        ".webmanifest": "application/manifest+json",
    }
)
INSTALL_HINT = "the web client's npm modules are not installed: run `make run`, or `npm ci` in web/"
MISSING_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley: web client not installed</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>The web client is not installed</h1>
<p>{html.escape(INSTALL_HINT)}, then reload this page.</p>
<p>The REST API (<code>/api/v1</code>) and Socket.IO (<code>/socket.io</code>) work without it.</p>
</body></html>
"""


def _is_file(path: Path) -> bool:
    return path.is_file()


class WebClient:
    """Serves the files of one web/ folder; every filesystem access runs in a worker thread."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _file_response(self, path: Path) -> web.FileResponse:
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
        return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})

    async def _vendor_installed(self) -> bool:
        return await asyncio.to_thread(_is_file, self.root / VENDOR_DIR / VENDOR_FILES["socket.io.esm.min.js"])

    async def index(self, request: web.Request) -> web.StreamResponse:
        """The page, or a 503 page that says how to install its npm modules."""
        if not await self._vendor_installed():
            return web.Response(status=503, text=MISSING_PAGE, content_type="text/html")
        return self._file_response(self.root / "index.html")

    async def vendor(self, request: web.Request) -> web.StreamResponse:
        """A whitelisted browser ES module from web/node_modules."""
        relative = VENDOR_FILES.get(request.match_info["name"])
        if relative is None:
            raise web.HTTPNotFound()
        path = self.root / VENDOR_DIR / relative
        if not await asyncio.to_thread(_is_file, path):
            return web.json_response(
                {"error": {"code": "web_client_not_installed", "message": INSTALL_HINT}}, status=503
            )
        return self._file_response(path)

    async def static(self, request: web.Request) -> web.StreamResponse:
        """The page's own files (CSS, ES modules, icons); nothing outside web/, nothing from node_modules."""
        relative = PurePosixPath(request.match_info["path"])
        parts = relative.parts
        if (
            not parts
            or relative.is_absolute()
            or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
            or parts[0] == "node_modules"
            or relative.suffix not in CONTENT_TYPES
        ):
            raise web.HTTPNotFound()
        path = self.root.joinpath(*parts)
        if not await asyncio.to_thread(_is_file, path):
            raise web.HTTPNotFound()
        return self._file_response(path)


def add_web_routes(app: web.Application, root: Path = WEB_DIR) -> None:
    """Register `/`, `/web/vendor/{name}` and `/web/{path}` for the web client in `root`."""
    client = WebClient(root)
    app.router.add_get("/", client.index)
    app.router.add_get("/web/vendor/{name}", client.vendor)
    app.router.add_get("/web/{path:.+}", client.static)
