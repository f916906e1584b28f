"""Try providers in order until one starts answering; never switch once words were sent."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence

from pipelines.chat.model import AnswerModel, Completed, GenerationFailed, PromptMessage, TextDelta

log = logging.getLogger(__name__)


class FallbackChain:
    """An `AnswerModel` over several: a provider that fails before its first token hands over to the next."""

    def __init__(self, providers: Sequence[AnswerModel]) -> None:
        if not providers:
            raise ValueError("a fallback chain needs at least one provider")
        self._providers = list(providers)

    async def stream(self, messages: Sequence[PromptMessage]) -> AsyncGenerator[TextDelta | Completed, None]:
        """The first provider that produces text answers; a failure after text is final."""
        failures: list[str] = []
        for provider in self._providers:
            started = False
            stream = provider.stream(messages)
            try:
                async for item in stream:
                    started = started or isinstance(item, TextDelta)
                    yield item
                return
            except GenerationFailed as exc:
                if started:
                    raise
                log.warning("provider %s failed before answering: %s", getattr(provider, "name", "?"), exc)
                failures.append(str(exc))
            finally:
                await stream.aclose()
        raise GenerationFailed("every provider failed: " + "; ".join(failures))

    async def close(self) -> None:
        """Close every provider."""
        for provider in self._providers:
            await provider.close()
