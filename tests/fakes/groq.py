"""A local Groq: OpenAI-compatible `chat.completion.chunk` SSE at /openai/v1/chat/completions."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Script:
    """What the next answers look like; tests change it between requests."""

    tokens: list[str] = field(default_factory=lambda: [f"word{i} " for i in range(20)])
    delay: float = 0.0
    #: HTTP statuses to answer the next requests with, one per request, before streaming normally
    fail_with: list[int] = field(default_factory=list)
    hang_before_first_token: bool = False
    drop_after: int | None = None


DATA_URI = re.compile(r"data:(image/(?:png|jpeg|webp|gif));base64,([A-Za-z0-9+/=]+)")


def _images(body: dict[str, Any], vision_models: set[str]) -> list[tuple[str, bytes]] | str:
    """The images of an OpenAI-style request (`image_url` parts with data: URIs), or why Groq refuses it."""
    found: list[tuple[str, bytes]] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            continue
        if message.get("role") != "user" or not isinstance(content, list):
            return "content parts are only allowed in user messages"
        for part in content:
            if part.get("type") == "text" and isinstance(part.get("text"), str) and set(part) == {"type", "text"}:
                continue
            url = (part.get("image_url") or {}).get("url", "") if part.get("type") == "image_url" else None
            match = DATA_URI.fullmatch(url or "")
            if match is None or set(part) != {"type", "image_url"}:
                return f"invalid content part: {json.dumps(part)[:200]}"
            try:
                found.append((match[1], base64.b64decode(match[2], validate=True)))
            except binascii.Error:
                return "invalid base64 image data"
    if found and body.get("model") not in vision_models:
        return f"model `{body.get('model')}` does not support image input"
    return found


@dataclass
class GroqFake:
    """The server's state: its script, and what it saw."""

    script: Script = field(default_factory=Script)
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: models that accept `image_url` parts (others answer 400, as Groq's text models do)
    vision_models: set[str] = field(default_factory=lambda: {"llama-vision-test"})
    #: (MIME type, bytes) of every image the requests carried, decoded
    images: list[tuple[str, bytes]] = field(default_factory=list)
    disconnects: int = 0
    completed: int = 0
    streams_open: int = 0
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/openai/v1/chat/completions", self._completions)
        return app

    def _chunk(
        self,
        completion_id: str,
        model: str,
        delta: dict[str, Any],
        finish: str | None = None,
        usage: dict[str, int] | None = None,
    ) -> bytes:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if usage is not None:
            body["x_groq"] = {"id": f"req_{completion_id}", "usage": usage}
        return f"data: {json.dumps(body)}\n\n".encode()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        images = _images(body, self.vision_models)
        if isinstance(images, str):
            error = {"error": {"message": images, "type": "invalid_request_error", "code": "invalid_request"}}
            return web.json_response(error, status=400)
        self.images += images
        script = self.script
        if script.fail_with:
            status = script.fail_with.pop(0)
            error = {"error": {"message": f"fake failure {status}", "type": "fake_error", "code": str(status)}}
            return web.json_response(error, status=status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        model = body.get("model", "fake")
        self.streams_open += 1
        try:
            if script.hang_before_first_token:
                await asyncio.sleep(3600)
            await response.write(self._chunk(completion_id, model, {"role": "assistant", "content": ""}))
            for index, token in enumerate(script.tokens):
                if script.drop_after is not None and index >= script.drop_after:
                    if request.transport is not None:
                        request.transport.close()
                    return response
                if script.delay:
                    await asyncio.sleep(script.delay)
                await response.write(self._chunk(completion_id, model, {"content": token}))
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(script.tokens),
                "total_tokens": prompt_tokens + len(script.tokens),
            }
            await response.write(self._chunk(completion_id, model, {}, finish="stop", usage=usage))
            await response.write(b"data: [DONE]\n\n")
            self.completed += 1
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects += 1
            raise
        finally:
            self.streams_open -= 1
