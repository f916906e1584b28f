"""Request and response bodies of the REST API (stored-row shapes live in store.schemas)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from store.models import ContentType, SessionType
from store.schemas import UserOut

Username = Annotated[str, StringConstraints(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


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


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: UserOut


class ProfileUpdate(Body):
    full_name: str | None = Field(default=None, max_length=200)
    avatar_url: str | None = Field(default=None, max_length=2048)
    email: Email | None = None
    preferences: dict[str, Any] | None = None

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
    title: Title | None = None
    session_type: SessionType | None = None
    rag_config: dict[str, Any] | None = None
    speech_config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    is_archived: bool | None = None


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0)


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
