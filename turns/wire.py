"""Every Socket.IO event of the chat namespace, in both directions, as a pydantic model: the one home of wire shapes.

Inbound models (`ClientEvent`) validate what clients send; outbound models (`ServerEvent`) are what the
broadcaster serialises, so the wire shape is whatever the model says. `event` names the Socket.IO event.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from pipelines.speech.audio import SAMPLE_RATE
from store.schemas import MessageOut, SessionOut

ClientId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("content must not be blank")
    return value


def _unset(value: Any) -> bool:
    return value is None


# -- client → server ---------------------------------------------------------------------------------


class ClientEvent(BaseModel):
    """Event payloads reject unknown fields and wrong types (no silent coercion of strings)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    event: ClassVar[str]


class UserMessageIn(ClientEvent):
    """Text, or one attachment: `file` (bytes: a Socket.IO binary event, as the REST form's part `file`)
    with its `filename` and a `mime_type` hint (the type is sniffed from the bytes); `content` may then be empty.

    `file` comes first: the later fields' checks read it, so each refusal names its own field.
    """

    event: ClassVar[str] = "user_message"
    file: bytes | None = None
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = Field(
        default=None, validate_default=True
    )
    mime_type: Annotated[str, StringConstraints(max_length=255)] | None = None
    content: str = Field(default="", validate_default=True)
    content_type: Literal["text"] = "text"
    client_id: ClientId | None = None

    @field_validator("filename")
    @classmethod
    def _filename_with_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "file" in info.data and (value is None) != (info.data["file"] is None):  # absent: `file` was refused
            raise ValueError("a file needs its filename, and a filename its file")
        return value

    @field_validator("mime_type")
    @classmethod
    def _mime_type_with_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("file") is None:
            raise ValueError("mime_type goes with a file")
        return value

    @field_validator("content")
    @classmethod
    def _text_or_file(cls, value: str, info: ValidationInfo) -> str:
        return value if info.data.get("file") is not None or "file" not in info.data else _not_blank(value)


class TypingIn(ClientEvent):
    event: ClassVar[str] = "typing"
    is_typing: bool


class StopIn(ClientEvent):
    event: ClassVar[str] = "stop_generation"
    message_id: uuid.UUID | None = Field(default=None, strict=False)


class EditIn(ClientEvent):
    event: ClassVar[str] = "edit_message"
    message_id: uuid.UUID = Field(strict=False)
    content: str = Field(min_length=1)

    _check_content = field_validator("content")(_not_blank)


class DeleteIn(ClientEvent):
    event: ClassVar[str] = "delete_message"
    message_id: uuid.UUID = Field(strict=False)


class SyncIn(ClientEvent):
    """Messages after `after_message_id` (from the first when absent), a page of at most `limit`;
    and/or the deltas of answer `message_id` after `last_seq`."""

    event: ClassVar[str] = "sync"
    after_message_id: uuid.UUID | None = Field(default=None, strict=False)
    message_id: uuid.UUID | None = Field(default=None, strict=False)
    last_seq: int = Field(default=0, ge=0)
    limit: int = Field(default=100, ge=1, le=500)


class AudioStartIn(ClientEvent):
    event: ClassVar[str] = "audio_start"
    sample_rate: int = SAMPLE_RATE
    format: Literal["pcm16"] = "pcm16"
    language: str | None = Field(default=None, max_length=16)


class AudioChunkIn(ClientEvent):
    """Documentation only: `audio_chunk` is a bare binary frame of pcm16 samples, not an object."""

    event: ClassVar[str] = "audio_chunk"
    data: bytes


class AudioEndIn(ClientEvent):
    """Ends the open utterance; after a refusal (`busy`, `rate_limited`) it retries the kept one."""

    event: ClassVar[str] = "audio_end"


class AudioCancelIn(ClientEvent):
    event: ClassVar[str] = "audio_cancel"


class TtsRequestIn(ClientEvent):
    event: ClassVar[str] = "tts_request"
    message_id: uuid.UUID = Field(strict=False)


CLIENT_EVENTS: tuple[type[ClientEvent], ...] = (
    UserMessageIn,
    TypingIn,
    StopIn,
    EditIn,
    DeleteIn,
    SyncIn,
    AudioStartIn,
    AudioChunkIn,
    AudioEndIn,
    AudioCancelIn,
    TtsRequestIn,
)


# -- server → client ---------------------------------------------------------------------------------


class ServerEvent(BaseModel):
    """What the server emits; `wire()` is the payload exactly as sent."""

    event: ClassVar[str]

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class MessageCreated(ServerEvent):
    event: ClassVar[str] = "message_created"
    message: MessageOut


class MessageUpdated(ServerEvent):
    event: ClassVar[str] = "message_updated"
    message: MessageOut


class MessageDeleted(ServerEvent):
    event: ClassVar[str] = "message_deleted"
    message: MessageOut


class SessionUpdated(ServerEvent):
    event: ClassVar[str] = "session_updated"
    session: SessionOut


class TypingIndicator(ServerEvent):
    """`user_id` is a user's id, or `assistant`; `username` is who types (null for the assistant)."""

    event: ClassVar[str] = "typing_indicator"
    user_id: str
    username: str | None = None
    is_typing: bool


class PresentUser(BaseModel):
    user_id: uuid.UUID
    username: str
    #: how many sockets (tabs, devices) the user has open in the room, on every node
    devices: int


class PresenceEvent(ServerEvent):
    """Who is in the room now, sent to the room whenever someone's first socket joins or a socket leaves."""

    event: ClassVar[str] = "presence"
    users: list[PresentUser]


class AssistantStart(ServerEvent):
    event: ClassVar[str] = "assistant_start"
    message_id: uuid.UUID
    reply_to: uuid.UUID


class AssistantToken(ServerEvent):
    event: ClassVar[str] = "assistant_token"
    message_id: uuid.UUID
    seq: int
    delta: str


class AssistantResponse(ServerEvent):
    """The stored answer and how it ended; `interrupted` when its producer was gone or broke."""

    event: ClassVar[str] = "assistant_response"
    message_id: uuid.UUID
    message: MessageOut
    content: str
    rag_context: dict[str, Any] | None
    processing_time: float | None
    tokens_used: int | None
    status: str
    provider: str | None
    last_seq: int
    interrupted: bool = False

    @classmethod
    def of(cls, answer: Any, provider: str | None, last_seq: int, *, interrupted: bool = False) -> AssistantResponse:
        """The response for a stored answer: the message and its outcome at the top level."""
        message = MessageOut.model_validate(answer)
        return cls(
            message_id=message.id,
            message=message,
            content=message.content,
            rag_context=message.rag_context,
            processing_time=message.processing_time,
            tokens_used=message.tokens_used,
            status=message.status.value,
            provider=provider,
            last_seq=last_seq,
            interrupted=interrupted,
        )


class TranscriptPartial(ServerEvent):
    event: ClassVar[str] = "transcript_partial"
    utterance_id: str
    rev: int
    text: str


class TranscriptFinal(ServerEvent):
    event: ClassVar[str] = "transcript_final"
    utterance_id: str
    text: str
    message: MessageOut


class TtsReady(ServerEvent):
    event: ClassVar[str] = "tts_ready"
    message_id: uuid.UUID
    audio_url: str
    duration: float


class ErrorEvent(ServerEvent):
    """A refusal: a stable `code`; `event` names the refused event; optional keys are left out when unset."""

    # `exclude_if` rather than a serializer function: the fields stay visible to the generated JSON schema
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)
    event: ClassVar[str] = "error"
    code: str
    message: str
    refused: str | None = Field(default=None, alias="event", exclude_if=_unset)
    details: Any = Field(default=None, exclude_if=_unset)
    retry_after: int | None = Field(default=None, exclude_if=_unset)
    #: the utterance an `utterance_timeout` dropped
    utterance_id: str | None = Field(default=None, exclude_if=_unset)


SERVER_EVENTS: tuple[type[ServerEvent], ...] = (
    MessageCreated,
    MessageUpdated,
    MessageDeleted,
    SessionUpdated,
    TypingIndicator,
    PresenceEvent,
    AssistantStart,
    AssistantToken,
    AssistantResponse,
    TranscriptPartial,
    TranscriptFinal,
    TtsReady,
    ErrorEvent,
)


# -- acks: what each client event's Socket.IO acknowledgement carries --------------------------------


class Ack(BaseModel):
    """An accepted event's ack; every handler answers `{ok: true, ...}`. Handlers return the model itself:
    the Socket.IO server serialises it (server/outbound.py `WireJSON`), by alias, as `ServerEvent.wire` does."""

    ok: Literal[True] = True


class Refusal(BaseModel):
    """A refused event's ack; the same `error` is also emitted to the socket."""

    ok: Literal[False] = False
    error: ErrorEvent


class UserMessageAck(Ack):
    """`duplicate` is present (true) when `client_id` named a message that was already stored. `session` is the
    session as this message left it (count, activity, title): the sender's `session_updated`, which the
    session's other sockets get as an event; absent for a duplicate, which changed nothing."""

    message: MessageOut
    duplicate: bool = Field(default=False, exclude_if=lambda value: not value)
    session: SessionOut | None = Field(default=None, exclude_if=_unset)


class StopAck(Ack):
    """The answer asked to stop, or null when nothing was streaming."""

    stopped: uuid.UUID | None


class MessageAck(Ack):
    message: MessageOut


class SyncDelta(BaseModel):
    seq: int
    delta: str


class SyncStream(BaseModel):
    message_id: uuid.UUID
    status: str
    deltas: list[SyncDelta]
    message: MessageOut


class SyncAck(Ack):
    """A page of messages (when asked) and/or one answer's deltas after `last_seq` (when `message_id` is set);
    `next_after_message_id` is the cursor of the next page while `has_more`, else null."""

    messages: list[MessageOut] | None = Field(default=None, exclude_if=_unset)
    has_more: bool | None = Field(default=None, exclude_if=_unset)
    next_after_message_id: uuid.UUID | None = None
    stream: SyncStream | None = Field(default=None, exclude_if=_unset)


class AudioStartAck(Ack):
    utterance_id: str


class AudioEndAck(Ack):
    """The `transcript_final` payload, also broadcast to the session."""

    utterance_id: str
    text: str
    message: MessageOut


class AudioCancelAck(Ack):
    cancelled: bool


class TtsAck(Ack):
    """The `tts_ready` payload, also sent to the asking socket."""

    message_id: uuid.UUID
    audio_url: str
    duration: float


ACKS: dict[str, type[Ack]] = {
    UserMessageIn.event: UserMessageAck,
    TypingIn.event: Ack,
    StopIn.event: StopAck,
    EditIn.event: MessageAck,
    DeleteIn.event: MessageAck,
    SyncIn.event: SyncAck,
    AudioStartIn.event: AudioStartAck,
    AudioChunkIn.event: Ack,
    AudioEndIn.event: AudioEndAck,
    AudioCancelIn.event: AudioCancelAck,
    TtsRequestIn.event: TtsAck,
}
"""The ack model of every client event when accepted; a refused event acks `Refusal`."""
