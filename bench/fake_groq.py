"""A token firehose speaking Groq's OpenAI-compatible streaming wire format (the chunk shape of
`tests/fakes/groq.py`): every answer is `--tokens` words of `TOKEN_CHARS` characters, written as fast as the
socket takes them; no word repeats within an answer or in the answers before it (Parley's loop guard ends an
answer that repeats itself or the conversation).
`GET /stats` returns, per request, the provider's own first-token time (request received → first token written).

    python -m bench.fake_groq --port 8300 --tokens 500
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN_CHARS = 5  # so delivered tokens = delivered characters / 5
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def token(index: int) -> str:
    """The index-th token: a four-letter word (26**4 of them before one repeats) and a space."""
    return "".join(_LETTERS[index // 26**power % 26] for power in (3, 2, 1, 0)) + " "


def _chunk(completion_id: str, delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "bench",
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage is not None:
        body["x_groq"] = {"id": f"req_{completion_id}", "usage": usage}
    return f"data: {json.dumps(body)}\n\n".encode()


@dataclass
class Firehose:
    """The provider's state: how many tokens per answer and the first-token times it measured (seconds)."""

    tokens: int
    first_token: list[float] = field(default_factory=list)
    started: int = 0  # answers begun: each takes the next `tokens` words

    async def completions(self, request: web.Request) -> web.StreamResponse:
        received = time.perf_counter()
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        start, self.started = self.started * self.tokens, self.started + 1
        tokens = [_chunk(completion_id, {"content": token(start + i)}) for i in range(self.tokens)]
        await response.write(_chunk(completion_id, {"role": "assistant", "content": ""}))
        await response.write(tokens[0])
        self.first_token.append(time.perf_counter() - received)
        for chunk in tokens[1:]:
            await response.write(chunk)
        usage = {"prompt_tokens": 10, "completion_tokens": self.tokens, "total_tokens": 10 + self.tokens}
        await response.write(_chunk(completion_id, {}, finish="stop", usage=usage))
        await response.write(b"data: [DONE]\n\n")
        return response

    async def stats(self, _request: web.Request) -> web.Response:
        return web.json_response({"first_token": self.first_token})

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=500)
    args = parser.parse_args()
    firehose = Firehose(args.tokens)
    app = web.Application()
    app.router.add_post("/openai/v1/chat/completions", firehose.completions)
    app.router.add_get("/stats", firehose.stats)
    app.router.add_get("/health", firehose.health)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
