"""The app serves the web client: the page, its modules, socket.io-client from npm; nothing else from web/."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from server.routes.web import VENDOR_FILES, add_web_routes
from tests.api import Api


async def test_the_page_its_modules_and_socket_io_client_are_served(api: Api) -> None:
    page = await api.call("GET", "/")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert '<script type="module" src="/web/js/main.js">' in page.body
    for path in ("/web/js/main.js", "/web/js/socket.js", "/web/js/pcm-worklet.js", "/web/js/ui/chat.js"):
        module = await api.call("GET", path)
        assert module.status == 200 and module.headers["Content-Type"].startswith("text/javascript"), path
    style = await api.call("GET", "/web/css/app.css")
    assert style.status == 200 and style.headers["Content-Type"].startswith("text/css")
    client = await api.call("GET", "/web/vendor/socket.io.esm.min.js")
    assert client.status == 200 and client.headers["Content-Type"].startswith("text/javascript")
    assert "export" in client.body  # the ES module build


@pytest.mark.parametrize("name", sorted(VENDOR_FILES))
async def test_every_vendor_module_of_the_import_map_is_served(api: Api, name: str) -> None:
    reply = await api.call("GET", f"/web/vendor/{name}")
    assert reply.status == 200, name
    if not name.endswith(".map"):
        assert reply.headers["Content-Type"].startswith("text/javascript") and "export" in reply.body, name
        page = await api.call("GET", "/")
        assert f'"/web/vendor/{name}"' in page.body, name  # in the import map


@pytest.mark.parametrize(
    "path",
    [
        "/web/package.json",
        "/web/node_modules/socket.io-client/package.json",
        "/web/node_modules/socket.io-client/dist/socket.io.js",
        "/web/%2e%2e/setup.cfg",
        "/web/js/../../setup.cfg",
        "/web/.hidden.js",
        "/web/js/missing.js",
        "/web/vendor/socket.io.js",
        "/web/vendor/marked.umd.js",
        "/web/vendor/highlight.min.js",
        "/web/node_modules/axe-core/axe.min.js",
    ],
)
async def test_nothing_else_is_served(api: Api, path: str) -> None:
    reply = await api.call("GET", path)
    assert reply.status == 404, (path, reply.body)


@pytest.fixture
async def bare_web(tmp_path: Path) -> AsyncIterator[str]:
    """A web/ folder whose `npm ci` never ran."""
    await asyncio.to_thread((tmp_path / "index.html").write_text, "<!doctype html><title>x</title>")
    app = web.Application()
    add_web_routes(app, tmp_path)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_without_node_modules_the_page_says_how_to_install_it(bare_web: str, http: ClientSession) -> None:
    async with http.get(f"{bare_web}/") as response:
        assert response.status == 503 and response.content_type == "text/html"
        assert "npm ci" in await response.text()
    async with http.get(f"{bare_web}/web/vendor/socket.io.esm.min.js") as response:
        assert response.status == 503
        assert (await response.json())["error"]["code"] == "web_client_not_installed"
