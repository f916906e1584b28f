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


@dataclass(frozen=True)
class Completed:
    """The model finished; who answered and what it cost."""

    provider: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class GenerationFailed(Exception):
    """The model could not produce (the rest of) an answer."""

    def __init__(self, message: str, provider: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider


class AnswerModel(Protocol):
    """Streams an answer: `TextDelta`s then one `Completed`, or raises `GenerationFailed`.

    Closing the iterator early must stop the generation (and close any upstream HTTP stream).
    """

    def stream(self, messages: Sequence[PromptMessage]) -> AsyncGenerator[TextDelta | Completed, None]: ...

    async def close(self) -> None:
        """Release connections, threads and model memory."""
