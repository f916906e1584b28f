"""An AsyncAPI 3.0 document of the chat namespace, built from the wire models in `turns.wire`.

The Socket.IO counterpart of `server.openapi`: one channel (`/chat/{session_id}`), a message per event,
`send` operations for what the server emits and `receive` operations (with their ack as the reply) for what
clients send. Server payloads are schemas in serialization mode by alias (what `wire()` sends), client
payloads in validation mode (what `parse` accepts).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from server import keys
from server.endpoints import Endpoint
from turns.wire import ACKS, CLIENT_EVENTS, SERVER_EVENTS, AudioChunkIn, Refusal

ASYNCAPI_PATH = "/api/v1/asyncapi.json"
REF = "#/components/schemas/{model}"
CHANNEL = "chat"
BINARY = {"type": "string", "format": "binary", "description": "raw pcm16 samples, mono, 16 kHz, little-endian"}


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/{kind}/{name}"}


def _schemas() -> tuple[dict[Any, Any], dict[str, Any]]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "serialization") for m in SERVER_EVENTS]
    models += [(m, "validation") for m in CLIENT_EVENTS if m is not AudioChunkIn]
    acks: list[type[BaseModel]] = [*ACKS.values(), Refusal]
    models += [(m, "serialization") for m in acks]
    refs, defs = models_json_schema(list(dict.fromkeys(models)), ref_template=REF, by_alias=True)
    return refs, defs.get("$defs", {})


def _doc(model: type[BaseModel]) -> str:
    return (model.__doc__ or "").strip()


def build_asyncapi(version: str) -> dict[str, Any]:
    """The whole document; `ack_<event>` messages are the replies of `receive` operations."""
    refs, schemas = _schemas()
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for server_event in SERVER_EVENTS:
        name = server_event.event
        messages[name] = {
            "name": name,
            "summary": _doc(server_event) or name,
            "contentType": "application/json",
            "payload": refs[(server_event, "serialization")],
        }
        operations[f"emit_{name}"] = {
            "action": "send",
            "channel": _ref("channels", CHANNEL),
            "summary": f"The server emits `{name}` to the session's sockets.",
            "messages": [_ref(f"channels/{CHANNEL}/messages", name)],
        }
    messages["refusal"] = {
        "name": "refusal",
        "summary": "The ack of a refused event: `{ok: false, error}` (the same error is emitted as `error`).",
        "contentType": "application/json",
        "payload": refs[(Refusal, "serialization")],
    }
    for client_event in CLIENT_EVENTS:
        name, ack = client_event.event, ACKS[client_event.event]
        binary = client_event is AudioChunkIn
        messages[name] = {
            "name": name,
            "summary": _doc(client_event) or name,
            "contentType": "application/octet-stream" if binary else "application/json",
            "payload": BINARY if binary else refs[(client_event, "validation")],
        }
        messages[f"ack_{name}"] = {
            "name": f"ack_{name}",
            "summary": f"The Socket.IO ack of an accepted `{name}`.",
            "contentType": "application/json",
            "payload": refs[(ack, "serialization")],
        }
        operations[f"on_{name}"] = {
            "action": "receive",
            "channel": _ref("channels", CHANNEL),
            "summary": f"A client sends `{name}`; the server acks `{{ok: true, ...}}` or `{{ok: false, error}}`.",
            "messages": [_ref(f"channels/{CHANNEL}/messages", name)],
            "reply": {
                "channel": _ref("channels", CHANNEL),
                "messages": [
                    _ref(f"channels/{CHANNEL}/messages", f"ack_{name}"),
                    _ref(f"channels/{CHANNEL}/messages", "refusal"),
                ],
            },
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Parley realtime API",
            "version": version,
            "description": "Socket.IO (engine.io v4) events of a chat session. Connect to namespace "
            "`/chat/{session_id}` with `auth: {token}` (or `?token=` / `Authorization: Bearer`).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "socketio": {
                "host": "localhost:8000",
                "pathname": "/socket.io",
                "protocol": "ws",
                "description": "The API's own host; Socket.IO falls back to HTTP long-polling (protocol http).",
                "security": [_ref("components/securitySchemes", "token")],
            }
        },
        "channels": {
            CHANNEL: {
                "address": "/chat/{session_id}",
                "title": "A chat session's namespace",
                "parameters": {"session_id": {"description": "The session's id (a UUID)."}},
                "messages": {name: _ref("components/messages", name) for name in messages},
            }
        },
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "securitySchemes": {
                "token": {"type": "httpApiKey", "name": "token", "in": "query", "description": "The JWT access token."}
            },
        },
    }


async def asyncapi(request: web.Request) -> web.Response:
    """The AsyncAPI document of the realtime API."""
    return web.json_response(request.app[keys.ASYNCAPI])


ENDPOINTS = (
    Endpoint("GET", ASYNCAPI_PATH, asyncapi, "The AsyncAPI document of the Socket.IO events", "ops", auth=False),
)
