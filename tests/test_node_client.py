"""node's socket.io-client@4 — the client browsers and mobile SDKs share the protocol with — against Parley."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.pipelines.media_util import text_image

NODE_DIR = Path(__file__).parent / "node"


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_node_client_logs_in_chats_and_receives_the_stream(
    chat_api: Api, chat_server: TestServer, groq: GroqFake, transport: str
) -> None:
    node = shutil.which("node")
    assert node is not None, "node is required (make test installs socket.io-client with npm)"
    assert (NODE_DIR / "node_modules" / "socket.io-client").is_dir(), "run `make test` (npm install in tests/node)"
    account = await chat_api.register()
    groq.script.tokens = [f"n{i} " for i in range(80)]
    process = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / "chat_client.mjs"),
        str(chat_server.make_url("")).rstrip("/"),
        account.username,
        account.password,
        transport,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["ack"]["ok"] is True and result["ack"]["message"]["content"] == "hello from node"
    tokens = result["tokens"]
    assert [t["seq"] for t in tokens] == list(range(1, len(tokens) + 1))
    assert "".join(t["delta"] for t in tokens) == result["response"]["content"] == "".join(groq.script.tokens)
    assert result["response"]["status"] == "complete"
    assert result["refusal"] == {
        "ok": False,
        "error": {
            "code": "invalid_payload",
            "message": "the payload is invalid",
            "event": "user_message",
            "details": result["refusal"]["error"]["details"],
        },
    }
    assert result["transport"] == "websocket"  # polling upgraded


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_node_client_sends_an_image_as_a_binary_user_message(
    chat_api: Api, chat_server: TestServer, transport: str, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node is not None, "node is required (make test installs socket.io-client with npm)"
    account = await chat_api.register()
    session = await chat_api.new_session(account)
    image = tmp_path / "shot.png"
    image.write_bytes(text_image(["Access code: 4821-ZEBRA"]))
    process = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / "attach_client.mjs"),
        str(chat_server.make_url("")).rstrip("/"),
        account.token,
        session["id"],
        transport,
        str(image),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, err.decode()
    result = json.loads(out)
    message = result["ack"]["message"]
    assert result["ack"]["ok"] is True and message["content_type"] == "image"
    assert message["attachment"]["filename"] == "shot.png" and message["attachment"]["content_type"] == "image/png"
    assert result["created"]["message"] == message
    sources = result["response"]["rag_context"]["sources"]
    assert sources[0]["document_name"] == "shot.png.txt" and "4821-ZEBRA" in sources[0]["snippet"]
