"""Pydantic models for every client → server event of the chat namespace."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

ClientId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Event(BaseModel):
    """Event payloads reject unknown fields and wrong types (no silent coercion of strings)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class UserMessageIn(Event):
    content: str = Field(min_length=1)
    content_type: Literal["text"] = "text"
    client_id: ClientId | None = None

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content must not be blank")
        return value


class TypingIn(Event):
    is_typing: bool


class StopIn(Event):
    message_id: uuid.UUID | None = Field(default=None, strict=False)


class EditIn(Event):
    message_id: uuid.UUID = Field(strict=False)
    content: str = Field(min_length=1)


class DeleteIn(Event):
    message_id: uuid.UUID = Field(strict=False)


class SyncIn(Event):
    after_message_id: uuid.UUID | None = Field(default=None, strict=False)
    message_id: uuid.UUID | None = Field(default=None, strict=False)
    last_seq: int = Field(default=0, ge=0)
