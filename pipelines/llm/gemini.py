"""Gemini through `google-genai` (the maintained SDK; `google-generativeai` is deprecated), streamed."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncGenerator, Sequence

import httpx
from google import genai
from google.genai import errors, types

from pipelines.chat.model import AnswerStyle, Completed, GenerationFailed, PromptMessage, TextDelta


def _parts(message: PromptMessage) -> list[types.Part]:
    """The images as inline data (`inlineData {mimeType, data}`), then the text."""
    images = [types.Part.from_bytes(data=image.data, mime_type=image.mime) for image in message.images]
    return [*images, types.Part(text=message.content)] if message.content or not images else images


class GeminiModel:
    """Streams `generate_content_stream`; the system prompt goes in `system_instruction`."""

    name = "gemini"

    def __init__(
        self,
        api_key: str,
        model: str,
        *,
        base_url: str | None = None,
        api_version: str | None = None,
        max_tokens: int = 1024,
        timeout: float = 60.0,
        style: AnswerStyle | None = None,
    ) -> None:
        self.style = style or AnswerStyle()
        # Our own httpx client, whose response hook notes each stream's HTTP responses: when a consumer
        # stops early the SDK leaves its inner generators to the garbage collector, so we close them.
        self._responses: contextvars.ContextVar[list[httpx.Response] | None] = contextvars.ContextVar(
            "gemini_responses", default=None
        )
        self._http = httpx.AsyncClient(timeout=timeout, event_hooks={"response": [self._note]})
        options = types.HttpOptions(
            base_url=base_url, api_version=api_version, timeout=int(timeout * 1000), httpx_async_client=self._http
        )
        self._client = genai.Client(api_key=api_key, http_options=options)
        self._model = model
        self._max_tokens = max_tokens

    async def _note(self, response: httpx.Response) -> None:
        opened = self._responses.get()
        if opened is not None:
            opened.append(response)

    async def stream(self, messages: Sequence[PromptMessage]) -> AsyncGenerator[TextDelta | Completed, None]:
        """Text deltas, then `Completed` with `usage_metadata`; failures become `GenerationFailed`."""
        system = "\n\n".join(m.content for m in messages if m.role == "system") or None
        contents = [
            types.Content(role="model" if m.role == "assistant" else "user", parts=_parts(m))
            for m in messages
            if m.role != "system"
        ]
        config = types.GenerateContentConfig(system_instruction=system, max_output_tokens=self._max_tokens)
        prompt_tokens = completion_tokens = 0
        opened: list[httpx.Response] = []
        self._responses.set(opened)
        try:
            stream = await self._client.aio.models.generate_content_stream(
                model=self._model, contents=contents, config=config
            )
            try:
                async for chunk in stream:
                    if chunk.text:
                        yield TextDelta(chunk.text, self.name)
                    usage = chunk.usage_metadata
                    if usage is not None:
                        prompt_tokens = usage.prompt_token_count or prompt_tokens
                        completion_tokens = usage.candidates_token_count or completion_tokens
            finally:
                aclose = getattr(stream, "aclose", None)  # the SDK returns an async generator
                if aclose is not None:
                    await aclose()
                for response in opened:  # stopped early: close the upstream stream now, not at GC time
                    await response.aclose()
        except (errors.APIError, httpx.HTTPError, ValueError) as exc:
            raise GenerationFailed(f"gemini: {exc}", self.name) from exc
        yield Completed(self.name, prompt_tokens, completion_tokens)

    async def load(self) -> None:
        """Nothing to load: the model is hosted, and the client was built with this object."""

    async def close(self) -> None:
        """Release the HTTP client."""
        await self._client.aio.aclose()
        await self._http.aclose()
