"""What a chat turn needs from a language model (the LLM fallback chain satisfies it)."""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ImagePart:
    """An image the user sent, for providers that see images (the others read its OCR text instead)."""

    mime: str
    data: bytes

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True)
class PromptMessage:
    role: Role
    content: str
    images: tuple[ImagePart, ...] = ()


@dataclass(frozen=True)
class TextDelta:
    text: str
    provider: str | None = None  # who is answering: known before `Completed`, which a stopped answer never gets


@dataclass(frozen=True)
class Completed:
    """The model finished; who answered and what it cost."""

    provider: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: prompt tokens the provider did not read again (llama.cpp's prompt cache); 0 when it does not say
    cached_tokens: int = 0


@dataclass(frozen=True)
class AnswerStyle:
    """How a turn shapes its prompt and answer for a model; a fallback chain uses its first provider's."""

    #: the conversation before the question, in estimated tokens
    history_tokens: int = 2000
    #: stop the answer after this many sentences (None: the token limit alone ends it)
    max_sentences: int | None = None
    #: open the answer with the retrieved sentences that best answer the question, quoted and cited
    evidence_first: bool = False
    #: cut each source in the prompt to its most relevant sentences within this many characters
    passage_chars: int | None = None
    #: runs of words that differ only in their numbers count as a loop ("* (1) * (2) * (3) …")
    fold_numbers: bool = False


class GenerationFailed(Exception):
    """The model could not produce (the rest of) an answer."""

    def __init__(self, message: str, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class AnswerModel(Protocol):
    """Streams an answer: `TextDelta`s then one `Completed`, or raises `GenerationFailed`.

    Closing the iterator early must stop the generation (and close any upstream HTTP stream).
    """

    @property
    def style(self) -> AnswerStyle:
        """How turns shape prompts and answers for this model."""
        ...

    def stream(self, messages: Sequence[PromptMessage]) -> AsyncGenerator[TextDelta | Completed, None]: ...

    async def load(self) -> None:
        """Be ready to answer without a wait: load what runs here (a hosted model has nothing to load)."""

    async def close(self) -> None:
        """Release connections, threads and model memory."""
