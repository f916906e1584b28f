"""Build the answer model named by LLM_PROVIDERS from explicit configuration."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from pipelines.chat.model import AnswerModel, AnswerStyle
from pipelines.llm import offline
from pipelines.llm.chain import ChainPolicy, FallbackChain
from pipelines.llm.gemini import GeminiModel
from pipelines.llm.groq import GroqModel
from pipelines.llm.offline import OfflineModel

KNOWN = ("groq", "gemini", "offline")


class LLMConfigError(ValueError):
    """The provider list cannot be built; the message names the setting to fix."""


@dataclass(frozen=True)
class LLMConfig:
    providers: tuple[str, ...]
    max_tokens: int = 512
    history_tokens: int = 1500
    groq_api_key: str | None = None
    groq_base_url: str | None = None
    groq_model: str = "llama-3.1-8b-instant"
    #: a Groq model that sees images; prompts with images go to it (None: images are left out for Groq)
    groq_vision_model: str | None = None
    offline_model_path: Path | None = None
    offline_max_tokens: int = 160
    offline_max_sentences: int | None = 3
    offline_threads: int | None = None  # None: half the cores
    gemini_api_key: str | None = None
    gemini_base_url: str | None = None
    gemini_model: str = "gemini-2.0-flash"
    gemini_api_version: str | None = None
    policy: ChainPolicy = field(default_factory=ChainPolicy)


def create_answer_model(config: LLMConfig) -> AnswerModel:
    """A fallback chain over the configured providers, in order."""
    providers: list[AnswerModel] = []
    hosted = AnswerStyle(history_tokens=config.history_tokens)
    local = replace(offline.STYLE, history_tokens=config.history_tokens, max_sentences=config.offline_max_sentences)
    for name in config.providers:
        if name == "groq":
            if not config.groq_api_key:
                raise LLMConfigError("LLM_PROVIDERS names groq but GROQ_API_KEY is not set")
            providers.append(
                GroqModel(
                    config.groq_api_key,
                    config.groq_model,
                    base_url=config.groq_base_url,
                    max_tokens=config.max_tokens,
                    vision_model=config.groq_vision_model,
                    style=hosted,
                )
            )
        elif name == "gemini":
            if not config.gemini_api_key:
                raise LLMConfigError("LLM_PROVIDERS names gemini but GEMINI_API_KEY is not set")
            providers.append(
                GeminiModel(
                    config.gemini_api_key,
                    config.gemini_model,
                    base_url=config.gemini_base_url,
                    api_version=config.gemini_api_version,
                    max_tokens=config.max_tokens,
                    style=hosted,
                )
            )
        elif name in ("offline", "local"):
            providers.append(
                OfflineModel(
                    config.offline_model_path,
                    max_tokens=config.offline_max_tokens,
                    threads=config.offline_threads,
                    style=local,
                )
            )
        else:
            raise LLMConfigError(f"LLM_PROVIDERS: unknown provider {name!r} (known: {', '.join(KNOWN)})")
    if not providers:
        raise LLMConfigError("LLM_PROVIDERS is empty")
    return FallbackChain(providers, config.policy)  # timeouts and retries apply to a single provider too
