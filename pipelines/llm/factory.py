"""Build the answer model named by LLM_PROVIDERS from explicit configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.chat.model import AnswerModel
from pipelines.llm.chain import FallbackChain
from pipelines.llm.groq import GroqModel
from pipelines.llm.offline import OfflineModel

KNOWN = ("groq", "offline")


class LLMConfigError(ValueError):
    """The provider list cannot be built; the message names the setting to fix."""


@dataclass(frozen=True)
class LLMConfig:
    providers: tuple[str, ...]
    max_tokens: int = 512
    groq_api_key: str | None = None
    groq_base_url: str | None = None
    groq_model: str = "llama-3.1-8b-instant"
    offline_model_path: Path | None = None


def create_answer_model(config: LLMConfig) -> AnswerModel:
    """One provider, or a fallback chain over several, in the configured order."""
    providers: list[AnswerModel] = []
    for name in config.providers:
        if name == "groq":
            if not config.groq_api_key:
                raise LLMConfigError("LLM_PROVIDERS names groq but GROQ_API_KEY is not set")
            providers.append(
                GroqModel(
                    config.groq_api_key, config.groq_model, base_url=config.groq_base_url, max_tokens=config.max_tokens
                )
            )
        elif name in ("offline", "local"):
            providers.append(OfflineModel(config.offline_model_path, max_tokens=config.max_tokens))
        else:
            raise LLMConfigError(f"LLM_PROVIDERS: unknown provider {name!r} (known: {', '.join(KNOWN)})")
    if not providers:
        raise LLMConfigError("LLM_PROVIDERS is empty")
    return providers[0] if len(providers) == 1 else FallbackChain(providers)
