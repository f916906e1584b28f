"""The tables: users, chat sessions, messages and the RAG context behind answers."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    event,
    false,
    text,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.orm.instrumentation import manager_of_class

from store.crypto import EncryptedJSON, EncryptedText
from store.types import JSONType, UTCDateTime, utcnow


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base; `Base.metadata` is what Alembic compares against."""


B = TypeVar("B", bound=Base)


def as_loaded(model: type[B], values: Mapping[str, Any]) -> B:
    """An instance holding `values` the way the ORM holds a loaded row's (no attribute events, no change
    history), detached: for hot paths that read or write with Core, at a tenth of the cost of `model(...)` or
    of an ORM query's loading. `values` are keyed by attribute, and must cover what callers will read."""
    instance: B = manager_of_class(model).new_instance()
    instance.__dict__.update(values)
    return instance


def column_keys(model: type[Base]) -> dict[str, str]:
    """Each column's name -> the attribute `as_loaded` sets from it (they differ where a name is reserved:
    `chat_sessions.metadata` is `ChatSession.meta`)."""
    mapper = model.__mapper__
    return {column.name: mapper.get_property_by_column(column).key for column in mapper.local_table.columns}


class SessionType(enum.StrEnum):
    rag = "rag"
    speech = "speech"
    mixed = "mixed"


class MessageType(enum.StrEnum):
    user = "user"
    assistant = "assistant"
    system = "system"


class ContentType(enum.StrEnum):
    text = "text"
    audio = "audio"
    image = "image"
    file = "file"


class MemberRole(enum.StrEnum):
    """What a member of someone else's session may do: `member` reads, writes and asks; `viewer` reads."""

    member = "member"
    viewer = "viewer"


class MessageStatus(enum.StrEnum):
    """How an assistant answer ended; user messages are always `complete`."""

    streaming = "streaming"
    complete = "complete"
    cancelled = "cancelled"
    failed = "failed"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e], validate_strings=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(32))
    #: lower-cased username: uniqueness is case-insensitive on every database
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str | None] = mapped_column(String(200))
    avatar_url: Mapped[str | None] = mapped_column(String(2048))
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_active_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def named_author(user_id: uuid.UUID | None, username: str | None) -> User | None:
    """A message's author as its wire shape reads it, the name alone, built as a loaded row (`User(...)` costs as
    much again as the message); None without a name (an assistant's message, an erased author's)."""
    return as_loaded(User, {"id": user_id, "username": username}) if username is not None else None


class ChatSession(Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (
        Index("ix_chat_sessions_user_last_message", "user_id", "last_message_at"),
        Index("ix_chat_sessions_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(String(200))
    session_type: Mapped[SessionType] = mapped_column(_enum(SessionType, "session_type"), default=SessionType.rag)
    rag_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    speech_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: `metadata` is reserved by SQLAlchemy's declarative base, hence the attribute name
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_session_created", "session_id", "created_at"),
        Index("ix_messages_created_type", "created_at", "message_type"),
        UniqueConstraint("session_id", "client_id", name="uq_messages_session_client_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    #: the author for user messages; NULL for assistant and system messages
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    message_type: Mapped[MessageType] = mapped_column(_enum(MessageType, "message_type"))
    content_type: Mapped[ContentType] = mapped_column(_enum(ContentType, "content_type"), default=ContentType.text)
    content: Mapped[str] = mapped_column(EncryptedText, default="")
    audio_url: Mapped[str | None] = mapped_column(String(2048))
    #: a compact summary of the sources (the full record is in rag_contexts)
    rag_context: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    processing_time: Mapped[float | None] = mapped_column(Float)
    tokens_used: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[MessageStatus] = mapped_column(
        _enum(MessageStatus, "message_status"), default=MessageStatus.complete
    )
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    client_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the image or file sent with a user message; joined into every message read (no extra round trip)
    attachment: Mapped[Attachment | None] = relationship(lazy="joined", uselist=False, back_populates="message")
    #: the author's account (for the username on the wire); joined like the attachment, never written through
    author: Mapped[User | None] = relationship(lazy="joined", viewonly=True)

    @property
    def username(self) -> str | None:
        """The author's username; None for assistant and system messages and for an erased author's."""
        return self.author.username if self.author is not None else None


@event.listens_for(Message, "init")
def _no_attachment_yet(target: Message, _args: Any, kwargs: dict[str, Any]) -> None:
    """A new message knows it has no attachment: reading it later must not try a lazy load."""
    kwargs.setdefault("attachment", None)
    kwargs.setdefault("author", None)


class SessionMember(Base):
    """Someone other than the owner who may join a session (a shared room); the owner is `chat_sessions.user_id`."""

    __tablename__ = "session_members"
    __table_args__ = (UniqueConstraint("session_id", "user_id", name="uq_session_members_session_user"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[MemberRole] = mapped_column(_enum(MemberRole, "member_role"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(lazy="joined", viewonly=True)


class RagContext(Base):
    __tablename__ = "rag_contexts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    query: Mapped[str] = mapped_column(EncryptedText)
    search_mode: Mapped[str] = mapped_column(String(32), default="hybrid")
    retrieved_documents: Mapped[list[dict[str, Any]]] = mapped_column(EncryptedJSON, default=list)
    generation_prompt: Mapped[str | None] = mapped_column(EncryptedText)
    llm_provider: Mapped[str | None] = mapped_column(String(64))
    retrieval_time: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DocumentStatus(enum.StrEnum):
    pending = "pending"
    processing = "processing"
    ready = "ready"
    failed = "failed"


class Document(Base):
    """An uploaded file, its ingestion state, and where its bytes are kept.

    `session_id` scopes a document to one session (files sent as attachments): only that session's
    answers search it. Without it the document is in the owner's library, searched by every session.
    The same file is stored once per scope.
    """

    __tablename__ = "documents"
    __table_args__ = (
        Index(
            "uq_documents_library_sha256",
            "user_id",
            "sha256",
            unique=True,
            postgresql_where=text("session_id IS NULL"),
            sqlite_where=text("session_id IS NULL"),
        ),
        Index("uq_documents_session_sha256", "user_id", "session_id", "sha256", unique=True),
        Index("ix_documents_session_id", "session_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("chat_sessions.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[DocumentStatus] = mapped_column(_enum(DocumentStatus, "document_status"))
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Attachment(Base):
    """The image or file of a user message: where its (sanitised) bytes and thumbnail are kept, and the
    session document its text was indexed as."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_session_created", "session_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    #: paths relative to `<data dir>/attachments`
    storage_key: Mapped[str] = mapped_column(String(255))
    thumbnail_key: Mapped[str | None] = mapped_column(String(255))
    document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message: Mapped[Message] = relationship(back_populates="attachment", lazy="raise")


class AuditEvent(Base):
    """Who did what, when and from where: security-relevant actions, never message content."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_created_at", "created_at"),
        Index("ix_audit_events_user_created", "user_id", "created_at"),
        Index("ix_audit_events_action_created", "action", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: no foreign key: the record of an account's erasure outlives the account
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="success")
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Login(Base):
    """One sign-in and the tokens refreshed from it: revoked together, and never renewed past `expires_at`."""

    __tablename__ = "logins"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the absolute end of the login, however often its tokens are refreshed
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
