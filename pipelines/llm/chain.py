"""Try providers in order until one starts answering; never switch once words were sent.

Each provider gets `retries` more tries, with exponential backoff, while it has not produced a token
(on errors such as 429/5xx, a dropped connection, or no first token within `first_token_timeout`). A
failure after the first token ends the answer as failed: the user already saw part of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from pipelines.chat.model import AnswerModel, AnswerStyle, Completed, GenerationFailed, PromptMessage, TextDelta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChainPolicy:
    first_token_timeout: float = 20.0
    total_timeout: float = 120.0
    retries: int = 1
    backoff: float = 0.5


async def _next_within(stream: AsyncGenerator[TextDelta | Completed, None], seconds: float) -> TextDelta | Completed:
    """The stream's next item, or TimeoutError; the timeout wraps one await, never a yield."""
    async with asyncio.timeout(max(seconds, 0.0)):
        return await anext(stream)


class FallbackChain:
    """An `AnswerModel` over several providers with timeouts, retries before the first token, and fallback."""

    def __init__(self, providers: Sequence[AnswerModel], policy: ChainPolicy | None = None) -> None:
        if not providers:
            raise ValueError("a fallback chain needs at least one provider")
        self._providers = list(providers)
        self.policy = policy or ChainPolicy()

    @property
    def max_sources(self) -> int | None:
        """How many retrieved chunks the first provider wants in its prompt (None: all of them)."""
        return getattr(self._providers[0], "max_sources", None)

    @property
    def style(self) -> AnswerStyle:
        """How turns shape prompts and answers: the first provider's way (it answers unless it fails)."""
        return getattr(self._providers[0], "style", None) or AnswerStyle()

    @property
    def name(self) -> str:
        return ",".join(getattr(p, "name", "?") for p in self._providers)

    async def stream(self, messages: Sequence[PromptMessage]) -> AsyncGenerator[TextDelta | Completed, None]:
        """The first provider that produces text answers; see the module docstring for the rules."""
        failures: list[str] = []
        for provider in self._providers:
            name = getattr(provider, "name", "?")
            for attempt in range(self.policy.retries + 1):
                if attempt:
                    await asyncio.sleep(self.policy.backoff * 2 ** (attempt - 1))
                started = False
                deadline = time.monotonic() + self.policy.total_timeout
                stream = provider.stream(messages)
                try:
                    while True:
                        budget = self.policy.first_token_timeout if not started else deadline - time.monotonic()
                        try:
                            item = await _next_within(stream, min(budget, deadline - time.monotonic()))
                        except StopAsyncIteration:
                            return
                        except TimeoutError as exc:
                            what = "no first token" if not started else "the answer took too long"
                            raise GenerationFailed(f"{name}: {what}", name) from exc
                        started = started or isinstance(item, TextDelta)
                        yield item
                except GenerationFailed as exc:
                    if started:
                        raise
                    log.warning("provider %s failed before answering (try %d): %s", name, attempt + 1, exc)
                    failures.append(str(exc))
                finally:
                    await stream.aclose()
        raise GenerationFailed("every provider failed: " + "; ".join(failures))

    async def load(self) -> None:
        """Load the providers that run here (the offline model's weights); hosted ones have nothing to load."""
        for provider in self._providers:
            await provider.load()

    async def close(self) -> None:
        """Close every provider."""
        for provider in self._providers:
            await provider.close()
