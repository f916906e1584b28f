"""Oversized and malformed input: request bodies, headers, URLs, uploads, socket frames and packets.
Each is refused with its documented error (or the connection is dropped), and the server keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientSession, WSMsgType
from aiohttp.test_utils import TestServer

from core.settings import Settings
from tests.api import Api
from tests.helpers import start_app
from tests.hostile.conftest import unlimited
from tests.hostile.raw_sio import ack_of, end_of, join, open_socket
from tests.sio import Recorder

FRAME_LIMIT = 256 * 1024
DOCUMENT_LIMIT = 64 * 1024


@pytest.fixture
async def small_server(chat_settings: Settings) -> Any:
    """Limits small enough to cross cheaply: socket frames of 256 KiB, documents of 64 KiB."""
    settings = replace(
        unlimited(chat_settings), socket_max_message_bytes=FRAME_LIMIT, document_max_bytes=DOCUMENT_LIMIT
    )
    server = await start_app(settings)
    yield server
    await server.close()


async def _alive(api: Api) -> None:
    reply = await api.call("GET", "/healthz")
    assert reply.status == 200, reply


async def test_oversized_and_malformed_rest_input(small_server: TestServer, http: ClientSession) -> None:
    api = Api(str(small_server.make_url("")), http)
    alice = await api.register()
    session = await api.new_session(alice)
    sessions = "/api/v1/chat/sessions"
    body = json.dumps({"title": "x", "metadata": {"blob": "y" * (2 * 1024 * 1024)}})
    too_big = await api.call(
        "POST",
        sessions,
        data=io.BytesIO(body.encode()),
        token=alice.token,
        headers={"Content-Type": "application/json"},
    )
    assert too_big.status == 413 and too_big.code == "payload_too_large", too_big
    for depth in (100_000, 5_000):  # nested past the JSON parser's recursion limit
        nested = '{"metadata": ' + "[" * depth + "]" * depth + "}"
        reply = await api.call("POST", sessions, data=io.BytesIO(nested.encode()), token=alice.token)
        assert reply.status == 400 and reply.code == "invalid_json", (depth, reply)
    deep_ok = '{"metadata": {"a": ' + "[" * 200 + "]" * 200 + "}}"
    assert (await api.call("POST", sessions, data=deep_ok, token=alice.token)).status == 201
    long_text = "z" * 8001
    reply = await api.post_message(alice, session["id"], long_text)
    assert reply.status == 422 and reply.code == "message_too_long", reply
    for text in ("nul \x00 inside", "lone \ud800 surrogate"):
        reply = await api.call(
            "POST", f"{sessions}/{session['id']}/messages", data=json.dumps({"content": text}), token=alice.token
        )
        assert reply.status == 422 and reply.code == "validation_error", (text, reply)
    reply = await api.call("GET", sessions, token=alice.token, params={"offset": str(10**30)})
    assert reply.status == 422, reply
    reply = await api.call("GET", sessions, token=alice.token, params={f"p{i}": "v" for i in range(500)})
    assert reply.status == 422, reply
    # a document past DOCUMENT_MAX_BYTES, and past the whole-request limit
    for size in (DOCUMENT_LIMIT + 1, 3 * 1024 * 1024):
        reply = await api.upload(alice, "big.txt", b"a" * size)
        assert reply.status == 413 and reply.code == "payload_too_large", (size, reply)
    # a speech upload past its 10 MiB
    reply = await api.call(
        "POST",
        f"{sessions}/{session['id']}/speech",
        data=io.BytesIO(b"\x00" * (10 * 1024 * 1024 + 1)),
        token=alice.token,
        headers={"Content-Type": "audio/wav"},
    )
    assert reply.status == 413 and reply.code == "payload_too_large", reply
    await _alive(api)


async def _raw_status(server: TestServer, request: bytes) -> int | None:
    """The status of one hand-written request, or None when the server just closed the connection."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request)
        await writer.drain()
        line = await reader.readline()
        await reader.read()
    except ConnectionResetError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(ConnectionResetError):
            await writer.wait_closed()
    return int(line.split()[1]) if line else None


async def test_oversized_headers_and_urls(small_server: TestServer, http: ClientSession) -> None:
    api = Api(str(small_server.make_url("")), http)
    cases = {
        "huge header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 100_000 + b"\r\n\r\n",
        "many headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: v\r\n" % i for i in range(500))
        + b"\r\n",
        "huge url": b"GET /api/v1/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "huge token": b"GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + b"t" * 60_000
        + b"\r\n\r\n",
        "bad content-length": b"POST /api/v1/users/login HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        "lying content-length": (
            b"POST /api/v1/users/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"
        ),
        "binary request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n",
        "bad chunking": (
            b"POST /api/v1/users/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
        ),
    }
    for name, request in cases.items():
        status = await _raw_status(small_server, request)
        assert status is None or 400 <= status < 500, (name, status)
    await _alive(api)


async def test_oversized_and_malformed_socket_input(small_server: TestServer, http: ClientSession) -> None:
    base = str(small_server.make_url(""))
    api = Api(base, http)
    alice = await api.register()
    session = await api.new_session(alice)
    namespace = f"/chat/{session['id']}"
    recorder = Recorder(base, namespace)
    await recorder.connect(alice.token)
    try:
        # inside the frame limit but past the message limit: a refusal, and the socket stays
        ack = await recorder.call("user_message", {"content": "m" * 8001})
        assert ack["ok"] is False and ack["error"]["code"] == "message_too_long", ack
        assert (await recorder.call("audio_start", {}, seconds=60))["ok"]
        ack = await recorder.call("audio_chunk", b"\x00\x01" * (40 * 1024))  # 80 KiB > 64 KiB per chunk
        assert ack["ok"] is False and ack["error"]["code"] == "chunk_too_large", ack
        assert (await recorder.call("audio_cancel", {}))["cancelled"] is True
        assert recorder.client.connected
    finally:
        await recorder.close()

    # a frame past SOCKET_MAX_MESSAGE_BYTES: the connection is dropped, nothing else
    ws = await open_socket(http, base)
    try:
        assert "sid" in await join(ws, namespace, alice.token)
        await ws.send_str(f'42{namespace},1["user_message",{{"content":"{"o" * (FRAME_LIMIT + 10)}"}}]')
        closed = await end_of(ws)
        assert closed.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING), closed
    finally:
        await ws.close()

    # malformed packets: each is ignored or ends that connection; the others are unharmed
    junk = [
        f"42{namespace},1" + "[" * 50_000 + "]" * 50_000,  # nested past the JSON parser
        f'42{namespace},2["typing",' + "{" * 10 + "}",  # cut short
        f"42{namespace},3not json at all",
        f'42{namespace},4{{"an":"object, not a list"}}',
        f"42{namespace},5[]",  # no event name
        f"42{namespace},6[42]",  # a number for a name
        f'42{namespace},7["typing",{{"is_typing":true}}',  # unbalanced
        f'45{namespace},1-8["audio_chunk",{{"_placeholder":true,"num":99}}]',  # an attachment never sent
        f'42{namespace},99999999999999999999999["typing",{{"is_typing":true}}]',  # an absurd ack id
        '42/not-a-namespace,10["typing"]',
        "49" + namespace,
        "4" * 1000,
        "8",
        "\x00\x01\x02",
    ]
    ws = await open_socket(http, base)
    try:
        assert "sid" in await join(ws, namespace, alice.token)
        for index, packet in enumerate(junk):
            if ws.closed:
                ws = await open_socket(http, base)
                assert "sid" in await join(ws, namespace, alice.token), index
            await ws.send_str(packet)
            await ws.send_bytes(b"\xff\xfe" * 8)  # a stray binary frame too
        if ws.closed:
            ws = await open_socket(http, base)
            assert "sid" in await join(ws, namespace, alice.token)
        await ws.send_str(f'42{namespace},500["typing",{{"is_typing":false}}]')
        try:
            ack = await ack_of(ws, namespace, 500)
        except ConnectionError:  # the last junk ended it: a fresh one must work
            ws = await open_socket(http, base)
            assert "sid" in await join(ws, namespace, alice.token)
            await ws.send_str(f'42{namespace},501["typing",{{"is_typing":false}}]')
            ack = await ack_of(ws, namespace, 501)
        assert ack == {"ok": True}
    finally:
        await ws.close()
    probe = Recorder(base, namespace)
    await probe.connect(alice.token)
    assert await probe.call("typing", {"is_typing": True}) == {"ok": True}
    await probe.close()
    await _alive(api)


async def _chat_connections(http: ClientSession, base: str) -> float:
    async with http.get(f"{base.rstrip('/')}/metrics") as response:
        text = await response.text()
    match = re.search(r'^parley_socket_connections\{namespace_kind="chat"\} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_an_empty_frame_ends_the_connection_cleanly(small_server: TestServer, http: ClientSession) -> None:
    base = str(small_server.make_url(""))
    api = Api(base, http)
    alice = await api.register()
    namespace = f"/chat/{(await api.new_session(alice))['id']}"
    ws = await open_socket(http, base)
    try:
        assert "sid" in await join(ws, namespace, alice.token)
        assert await _chat_connections(http, base) == 1
        await ws.send_str("")
        closed = await end_of(ws)
        # python-engineio alone let its handler die here, wrote a 500 into the upgraded stream and kept the
        # socket until its ping timeout; server.realtime.ClosingWebSocket ends it like a close
        assert closed.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR), closed
    finally:
        await ws.close()
    for _ in range(50):  # the server forgets the socket once it is closed
        if await _chat_connections(http, base) == 0:
            break
        await asyncio.sleep(0.1)
    assert await _chat_connections(http, base) == 0
