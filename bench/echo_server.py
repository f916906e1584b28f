"""The bare baseline: python-socketio AsyncServer on aiohttp doing what Parley's `user_message` does minus
the application: ack `{ok, message}` and announce `message_created` to the other sockets of the namespace.

    python -m bench.echo_server --port 8100 [--redis redis://127.0.0.1:6379/14]
"""

from __future__ import annotations

import argparse
import itertools
import time
import uuid
from typing import Any

import socketio
from aiohttp import web


class EchoNamespace(socketio.AsyncNamespace):
    """Catch-all namespace (like Parley's `/chat/<id>`): every socket may join any namespace."""

    def __init__(self) -> None:
        super().__init__("*")
        self._ids = itertools.count(1)

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return None
        namespace, sid, *rest = args
        if event != "user_message":
            return {"ok": False, "error": {"code": "unknown_event"}}
        data = rest[0] if rest else {}
        message = {
            "id": str(uuid.uuid4()),
            "seq": next(self._ids),
            "content": data.get("content", "") if isinstance(data, dict) else "",
            "client_id": data.get("client_id") if isinstance(data, dict) else None,
            "created_at": time.time(),
        }
        await self.emit("message_created", {"message": message}, namespace=namespace, skip_sid=sid)
        return {"ok": True, "message": message}


def create_app(redis_url: str | None) -> web.Application:
    """An aiohttp app with Socket.IO at /socket.io and GET /health."""
    manager = socketio.AsyncRedisManager(redis_url) if redis_url else None
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, namespaces="*", logger=False)
    sio.register_namespace(EchoNamespace())
    app = web.Application()
    sio.attach(app, socketio_path="socket.io")

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    web.run_app(create_app(args.redis), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
