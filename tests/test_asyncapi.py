"""The AsyncAPI document of the Socket.IO events: served, AsyncAPI 3.0 shaped, complete, every `$ref` resolving."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs

from tests.api import Api
from tests.sio import payload_validator
from turns.wire import CLIENT_EVENTS, SERVER_EVENTS, ErrorEvent


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


async def test_the_asyncapi_document_describes_every_event(chat_api: Api) -> None:
    reply = await chat_api.call("GET", "/api/v1/asyncapi.json")
    assert reply.status == 200
    doc = reply.body
    assert doc["asyncapi"] == "3.0.0" and doc["info"]["title"] and doc["info"]["version"]
    assert {"host", "protocol", "pathname"} <= set(doc["servers"]["socketio"])
    assert doc["servers"]["socketio"]["pathname"] == "/socket.io"
    for ref in _refs(doc):
        _resolve(doc, ref)

    (channel_name, channel), *others = doc["channels"].items()
    assert not others and channel["address"] == "/chat/{session_id}"
    assert set(re.findall(r"{(\w+)}", channel["address"])) == set(channel["parameters"])
    channel_messages = {f"#/channels/{channel_name}/messages/{name}" for name in channel["messages"]}

    operations = doc["operations"]
    sent = {m["$ref"].rsplit("/", 1)[1] for op in operations.values() if op["action"] == "send" for m in op["messages"]}
    received = {
        op["messages"][0]["$ref"].rsplit("/", 1)[1]: op for op in operations.values() if op["action"] == "receive"
    }
    assert sent == {model.event for model in SERVER_EVENTS}
    assert set(received) == {model.event for model in CLIENT_EVENTS}
    for operation in operations.values():
        assert operation["action"] in ("send", "receive")
        assert operation["channel"] == {"$ref": f"#/channels/{channel_name}"}
        # AsyncAPI 3: an operation's messages are messages of its channel
        assert {m["$ref"] for m in operation["messages"]} <= channel_messages
        if operation["action"] == "receive":
            assert {m["$ref"] for m in operation["reply"]["messages"]} <= channel_messages

    messages = doc["components"]["messages"]
    assert messages["audio_chunk"]["payload"]["format"] == "binary"
    assert messages["audio_chunk"]["contentType"] == "application/octet-stream"
    for name, message in messages.items():
        assert message["name"] == name and "payload" in message
    for schema in doc["components"]["schemas"].values():
        jsonschema_rs.meta.validate(schema)  # each is a valid JSON schema

    # the documented shapes are the wire shapes: refusals carry `event` (the refused event's name)
    error = ErrorEvent(code="busy", message="an answer is streaming", refused="user_message").wire()
    assert payload_validator(doc, "error").is_valid(error)
    assert not payload_validator(doc, "error").is_valid({"code": "busy"})
    assert payload_validator(doc, "refusal").is_valid({"ok": False, "error": error})
    assert not payload_validator(doc, "ack_sync").is_valid({"ok": True, "has_more": "no"})
