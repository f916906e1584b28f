"""Wire shapes of stored rows: the same pydantic models serve REST, Socket.IO and the cache."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from store.models import Attachment, ContentType, DocumentStatus, MessageStatus, MessageType, SessionType

T = TypeVar("T")


class _FromRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserPublic(_FromRow):
    """What any signed-in user may see of another."""

    id: uuid.UUID
    username: str
    full_name: str | None
    avatar_url: str | None
    created_at: datetime


class UserOut(UserPublic):
    """The owner's own view of their account."""

    email: str | None
    preferences: dict[str, Any]
    updated_at: datetime
    last_active_at: datetime | None
    is_admin: bool = False


class SessionOut(_FromRow):
    id: uuid.UUID
    user_id: uuid.UUID
    title: str | None
    session_type: SessionType
    rag_config: dict[str, Any]
    speech_config: dict[str, Any]
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("meta", "metadata"))
    is_archived: bool
    archived_at: datetime | None
    message_count: int
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None


class SessionWithRole(SessionOut):
    """A session as its owner or one of its members lists it: `role` is the caller's (owner, member, viewer)."""

    role: str


class MemberOut(BaseModel):
    """Someone who may join a session: its owner, or a member (`member` or `viewer`)."""

    user_id: uuid.UUID
    username: str
    role: str
    added_at: datetime


ATTACHMENTS_PATH = "/api/v1/attachments"


def attachment_url(attachment_id: uuid.UUID) -> str:
    return f"{ATTACHMENTS_PATH}/{attachment_id}"


class AttachmentOut(BaseModel):
    """An attachment as a message carries it; `url` (and `thumbnail_url` for images) serve the bytes."""

    id: uuid.UUID
    filename: str
    content_type: str
    size_bytes: int
    url: str
    thumbnail_url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, value: Any) -> Any:
        if isinstance(value, Attachment):
            url = attachment_url(value.id)
            return {
                "id": value.id,
                "filename": value.filename,
                "content_type": value.content_type,
                "size_bytes": value.size_bytes,
                "url": url,
                "thumbnail_url": f"{url}/thumbnail" if value.thumbnail_key else None,
            }
        return value


class AttachmentRecord(_FromRow):
    """An attachment as the owner's data export lists it."""

    id: uuid.UUID
    session_id: uuid.UUID
    message_id: uuid.UUID
    user_id: uuid.UUID
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    document_id: uuid.UUID | None
    created_at: datetime


class MessageOut(_FromRow):
    id: uuid.UUID
    session_id: uuid.UUID
    #: the author of a user message; null for answers, and once the author's account was erased
    user_id: uuid.UUID | None
    #: the author's username, with `user_id`
    username: str | None = None
    message_type: MessageType
    content_type: ContentType
    content: str
    audio_url: str | None
    rag_context: dict[str, Any] | None
    processing_time: float | None
    tokens_used: int | None
    status: MessageStatus
    reply_to: uuid.UUID | None = Field(validation_alias=AliasChoices("reply_to_id", "reply_to"))
    client_id: str | None
    created_at: datetime
    edited_at: datetime | None
    is_deleted: bool
    #: images and files (`content_type` image or file); a deleted message shows none
    attachment: AttachmentOut | None = None

    @model_validator(mode="after")
    def _deleted_hides_attachment(self) -> MessageOut:
        if self.is_deleted:
            self.attachment = None
        return self


class RagContextOut(_FromRow):
    id: uuid.UUID
    message_id: uuid.UUID
    session_id: uuid.UUID
    query: str
    search_mode: str
    retrieved_documents: list[dict[str, Any]]
    generation_prompt: str | None
    llm_provider: str | None
    retrieval_time: float | None
    created_at: datetime


class DocumentOut(_FromRow):
    id: uuid.UUID
    user_id: uuid.UUID
    session_id: uuid.UUID | None
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    status: DocumentStatus
    chunk_count: int
    chunks_done: int
    error: str | None
    created_at: datetime
    updated_at: datetime


class Page(BaseModel, Generic[T]):
    """A slice of a longer list."""

    items: list[T]
    total: int
    limit: int
    offset: int


class RecentMessages(BaseModel):
    """A session's newest messages (oldest first) and how many it holds in all: the `messages:{id}` entry."""

    total: int
    items: list[MessageOut]
