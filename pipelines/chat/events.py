"""The typed events a chat turn yields; REST and Socket.IO turn them into responses or emits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from store.models import ChatSession, Message


@dataclass(frozen=True)
class AnswerStarted:
    """The answer begins; its assistant message row exists (status `streaming`)."""

    answer_id: uuid.UUID


@dataclass(frozen=True)
class Token:
    """A piece of the answer's text."""

    delta: str


@dataclass(frozen=True)
class AnswerFinished:
    """The answer is stored with its final status (`complete`, `cancelled` or `failed`)."""

    message: Message
    rag_context: dict[str, Any] | None = None
    provider: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: the session as the finish left it (counted, stamped); None when another finish came first
    session: ChatSession | None = None


TurnEvent = AnswerStarted | Token | AnswerFinished
