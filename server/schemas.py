"""Request and response bodies of the REST API (stored-row shapes live in store.schemas)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from store.models import ContentType, SessionType
from store.schemas import AttachmentRecord, DocumentOut, MemberOut, MessageOut, RagContextOut, SessionOut, UserOut

Username = Annotated[str, StringConstraints(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
#: past any real page, and inside the 64-bit OFFSET both databases take (larger ones raised 500)
MAX_OFFSET = 2**31 - 1


class Body(BaseModel):
    """Request bodies reject unknown fields so typos fail loudly."""

    model_config = ConfigDict(extra="forbid")


class RegisterIn(Body):
    username: Username
    password: str = Field(min_length=8, max_length=1024)
    email: Email | None = None
    full_name: str | None = Field(default=None, max_length=200)


class LoginIn(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChangeIn(Body):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: UserOut


class ProfileUpdate(Body):
    full_name: str | None = Field(default=None, max_length=200)
    avatar_url: str | None = Field(default=None, max_length=2048)
    email: Email | None = None
    #: only the fields sent change; `preferences` cannot be null (a stored null broke every later sign-in)
    preferences: dict[str, Any] = Field(default_factory=dict)

    @field_validator("avatar_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "/")):
            raise ValueError("avatar_url must be an http(s) URL or a path")
        return value


class SessionCreate(Body):
    title: Title | None = None
    session_type: SessionType = SessionType.rag
    rag_config: dict[str, Any] = Field(default_factory=dict)
    speech_config: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SessionUpdate(Body):
    """Only the fields sent change (the defaults are never applied); only `title` may be cleared with null."""

    title: Title | None = None
    session_type: SessionType = SessionType.rag
    rag_config: dict[str, Any] = Field(default_factory=dict)
    speech_config: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    is_archived: bool = False


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class SessionListQuery(PageQuery):
    archived: bool = False


class MessageListQuery(PageQuery):
    include_deleted: bool = False


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("content must not be blank")
    return value


class MessageCreate(Body):
    content: str = Field(min_length=1)
    content_type: Literal[ContentType.text] = ContentType.text
    client_id: ClientId | None = None

    _content = field_validator("content")(_not_blank)


class MessageEdit(Body):
    content: str = Field(min_length=1)

    _content = field_validator("content")(_not_blank)


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


def _default_since() -> datetime:
    return datetime.now(UTC) - timedelta(days=30)


def _now() -> datetime:
    return datetime.now(UTC)


class TimeRange(BaseModel):
    """`from` (default 30 days ago) and `to` (default now), ISO 8601 with a time zone."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    since: AwareDatetime = Field(default_factory=_default_since, alias="from")
    until: AwareDatetime = Field(default_factory=_now, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.since >= self.until:
            raise ValueError("`from` must be before `to`")
        return self


class AnalyticsQuery(TimeRange):
    top: int = Field(default=10, ge=1, le=100)


class AuditQuery(TimeRange):
    user_id: uuid.UUID | None = None
    action: str | None = Field(default=None, max_length=64)
    outcome: Literal["success", "failure"] | None = None
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class PopularQuery(BaseModel):
    query: str
    count: int


class DailyActive(BaseModel):
    day: str
    users: int


class AnalyticsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    since: datetime = Field(alias="from")
    until: datetime = Field(alias="to")
    active_sessions: int
    average_session_duration_seconds: float
    messages: int
    messages_by_type: dict[str, int]
    messages_per_session: float
    popular_queries: list[PopularQuery]
    daily_active_users: list[DailyActive]
    active_users: int
    messages_per_user: float
    answers: dict[str, int]
    error_rates: dict[str, float]
    login_failures: int


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    user_id: uuid.UUID | None
    action: str
    outcome: str
    target_type: str | None
    target_id: str | None
    ip: str | None
    request_id: str | None
    details: dict[str, Any]


class MembershipRecord(BaseModel):
    session_id: uuid.UUID
    role: str
    added_at: datetime


class ExportOut(BaseModel):
    """Everything Parley stores about the caller."""

    user: UserOut
    sessions: list[SessionOut]
    messages: list[MessageOut]
    rag_contexts: list[RagContextOut]
    documents: list[DocumentOut]
    attachments: list[AttachmentRecord] = []
    #: the sessions of others I am a member of (their messages by me are in `messages`)
    memberships: list[MembershipRecord] = []


class EraseOut(BaseModel):
    erased: dict[str, int]


class MemberIn(Body):
    """Invite someone by username: `member` reads, writes and asks; `viewer` reads only."""

    username: str = Field(min_length=1, max_length=64)
    role: Literal["member", "viewer"] = "member"


class MemberRoleIn(Body):
    role: Literal["member", "viewer"]


class MembersOut(BaseModel):
    """Everyone who may join the session: its owner first, then its members in the order they were added."""

    items: list[MemberOut]
