"""A local Gemini API: `models/{model}:streamGenerateContent?alt=sse` with Gemini's JSON chunks."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.groq import Script


@dataclass
class GeminiFake:
    script: Script = field(default_factory=Script)
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnects: int = 0
    completed: int = 0
    url: str = ""
    #: (MIME type, bytes) of every `inlineData` part the requests carried, decoded
    images: list[tuple[str, bytes]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(r"/{version}/models/{model}:streamGenerateContent", self._stream)
        return app

    @staticmethod
    def _chunk(text: str, usage: dict[str, int] | None = None, finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        body: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-fake"}
        if usage:
            body["usageMetadata"] = usage
        return f"data: {json.dumps(body)}\r\n\r\n".encode()

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(
            {
                "path": request.path,
                "query": dict(request.query),
                "body": body,
                "api_key": request.headers.get("x-goog-api-key"),
            }
        )
        for content in body.get("contents", []):
            for part in content.get("parts", []):
                if "inlineData" not in part:
                    continue
                inline = part["inlineData"]
                # proto3 JSON: the API accepts `mimeType` and the field's own name `mime_type` (google-genai
                # sends the latter), and base64 in the standard or the URL-safe alphabet
                mime = inline.get("mimeType", inline.get("mime_type"))
                try:
                    if set(part) != {"inlineData"} or len(inline) != 2 or not isinstance(mime, str):
                        raise ValueError(f"malformed inlineData part: {sorted(part)} {sorted(inline)}")
                    data = str(inline["data"])
                    decoded = base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
                    self.images.append((mime, decoded))
                except (ValueError, KeyError, binascii.Error) as exc:
                    error = {"error": {"code": 400, "message": str(exc)[:200], "status": "INVALID_ARGUMENT"}}
                    return web.json_response(error, status=400)
        script = self.script
        if script.fail_with:
            status = script.fail_with.pop(0)
            error = {"error": {"code": status, "message": f"fake failure {status}", "status": "UNAVAILABLE"}}
            return web.json_response(error, status=status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            if script.hang_before_first_token:
                await asyncio.sleep(3600)
            for index, token in enumerate(script.tokens):
                if script.drop_after is not None and index >= script.drop_after:
                    if request.transport is not None:
                        request.transport.close()
                    return response
                if script.delay:
                    await asyncio.sleep(script.delay)
                await response.write(self._chunk(token))
            usage = {
                "promptTokenCount": 11,
                "candidatesTokenCount": len(script.tokens),
                "totalTokenCount": 11 + len(script.tokens),
            }
            await response.write(self._chunk("", usage, finish="STOP"))
            self.completed += 1
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects += 1
            raise
