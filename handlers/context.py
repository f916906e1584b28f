"""What the chat namespace's event handlers need from the app, and from the connection they serve."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.auth import Auth
from core.metrics import Metrics
from core.ratelimit import Limits, RateLimiter
from handlers.tokens import Revocations
from pipelines.speech.service import Speech
from store.cache import Cache
from turns.access import Access
from turns.broadcast import Broadcaster
from turns.control import StopBus, TurnGate
from turns.delta_log import DeltaLog
from turns.intake import Author, Intake
from turns.presence import MemoryPresence, Presence


@dataclass(frozen=True)
class ChatContext:
    """What the namespace needs from the app."""

    auth: Auth
    sessionmaker: async_sessionmaker[AsyncSession]
    intake: Intake
    broadcaster: Broadcaster
    deltas: DeltaLog
    gate: TurnGate
    stops: StopBus
    speech: Speech
    limiter: RateLimiter
    limits: Limits
    metrics: Metrics
    cache: Cache
    access: Access
    trust_forwarded_for: bool = False
    auto_answer: bool = True  # False stores messages without answering (benchmarks, human-only rooms)
    revocations: Revocations | None = None  # ends the sockets of a revoked login or a removed member
    presence: Presence = field(default_factory=MemoryPresence)


class Connection(Protocol):
    """Who is behind a socket: fixed at connect, read by every event."""

    async def who(self, namespace: str, sid: str) -> tuple[uuid.UUID, uuid.UUID]:
        """The user and the session of the socket."""
        ...

    async def address(self, namespace: str, sid: str) -> str:
        """The client address the socket connected from."""
        ...

    async def username(self, namespace: str, sid: str) -> str:
        """The username of the socket's user."""
        ...

    async def author(self, namespace: str, sid: str) -> tuple[Author, uuid.UUID]:
        """Who sends from the socket (user, address, socket, username), and the socket's session."""
        ...
