"""The one intake of a user turn, whatever the entry point (socket text or voice, REST messages, rag-query,
speech upload): validate, authorize, idempotency by client_id, the session's turn gate, limits charged
only when the message is accepted, persist, broadcast, start the answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from core import logs
from core.errors import Refused
from core.metrics import Metrics
from core.ratelimit import Limits, RateLimited, RateLimiter
from core.tasks import TaskSet
from pipelines.chat.turn import TurnRequest
from pipelines.media.prepare import PreparedAttachment
from pipelines.media.service import Attachments, Indexed
from pipelines.media.sniff import AttachmentRefused
from pipelines.speech.service import Speech
from store import messages
from store.messages import NewUserMessage, Posted
from store.models import Attachment, ContentType, Message
from store.schemas import MessageOut, SessionOut
from turns.access import Access, Need
from turns.answers import AnswerHandle, Answers
from turns.broadcast import Outbox
from turns.control import TurnGate
from turns.voice import audio_url
from turns.wire import ErrorEvent, MessageCreated, SessionUpdated
from turns.writer import BatchWriter, Claims

log = logging.getLogger(__name__)
#: a repeated client_id refused by the turn gate looks for its first copy this often, this far apart
REPEAT_LOOKUPS = 4
REPEAT_LOOKUP_SECONDS = 0.05


@dataclass(frozen=True)
class Author:
    """Who sends the message, from where; `sid` is the sending socket, which gets no `message_created` echo.
    `username` goes on the stored message's wire shape (read from the database when not given)."""

    user_id: uuid.UUID
    address: str
    sid: str | None = None
    username: str | None = None


@dataclass(frozen=True)
class Recording:
    """A voice message's audio: 16 kHz pcm16 from a socket, or a WAV from an upload. Stored only on acceptance."""

    pcm: bytes | None = None
    wav: bytes | None = None


@dataclass(frozen=True)
class Upload:
    """One attached file as received; its type is sniffed from `data`, `mime_type` is only a hint."""

    data: bytes
    filename: str
    mime_type: str | None = None


@dataclass(frozen=True)
class NewMessage:
    content: str
    content_type: ContentType = ContentType.text
    client_id: str | None = None
    recording: Recording | None = None
    attachment: Upload | None = None
    answer: bool = True
    follow: bool = False  # the caller reads the answer's events from `Accepted.answer` (REST)
    session_in_ack: bool = False  # the sender's ack carries the session: no `session_updated` to its socket
    rag_overrides: dict[str, Any] | None = None


@dataclass(frozen=True)
class Accepted:
    """The stored message (the first copy for a repeated client_id) and, when one started, its answer."""

    message: Message
    created: bool
    answer: AnswerHandle | None = None
    posted: Posted | None = None
    wire: MessageOut | None = None  # the message as sent in `message_created`, when that was sent
    session: SessionOut | None = None  # the session as sent in `session_updated`, when that was sent

    def payload(self) -> MessageOut:
        return self.wire if self.wire is not None else MessageOut.model_validate(self.message)


class Intake:
    """Accepts user messages; one instance per app."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        access: Access,
        limiter: RateLimiter,
        limits: Limits,
        gate: TurnGate,
        answers: Answers,
        speech: Speech,
        metrics: Metrics,
        max_message_chars: int,
        writer: BatchWriter,
        outbox: Outbox,
        attachments: Attachments | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._access = access
        self._limiter, self._limits = limiter, limits
        self._gate = gate
        self._answers = answers
        self._speech = speech
        self._metrics = metrics
        self.max_message_chars = max_message_chars
        self._writer = writer
        self._outbox = outbox
        self._claims = Claims()
        self._user_messages = metrics.messages.labels("user")
        self._attachments = attachments
        self._notices = TaskSet()

    async def accept(self, session_id: uuid.UUID, author: Author, new: NewMessage) -> Accepted:
        """Store `new` exactly once and start its answer, or raise a refusal having stored and charged nothing."""
        if len(new.content) > self.max_message_chars:
            raise Refused("message_too_long", f"a message holds at most {self.max_message_chars} characters")
        # a stranger: not found; a viewer: forbidden. Whether the session is archived is checked by the
        # batch, under its lock
        await self._access.require(session_id, author.user_id, Need.write)
        key = (session_id, new.client_id) if new.client_id is not None else None
        while key is not None and (first := self._claims.pending(key)) is not None:
            earlier = await first  # the same client_id on another socket of this node: its outcome is ours
            if earlier is not None:
                return Accepted(earlier.message, False)
        claim = self._claims.take(key) if key is not None else None
        posted: Posted | None = None
        try:
            accepted = await self._accept(session_id, author, new)
            posted = accepted.posted
            return accepted
        finally:
            if key is not None and claim is not None:
                self._claims.settle(key, posted)

    async def _accept(self, session_id: uuid.UUID, author: Author, new: NewMessage) -> Accepted:
        prepared = await self._prepare(new.attachment)  # before the gate and the limits: a refusal costs nothing
        if prepared is not None:
            new = replace(new, content_type=ContentType(prepared.kind))
        answer_id = uuid7() if new.answer else None  # time-ordered as its question's (`_store`)
        if answer_id is not None and not await self._gate.acquire(session_id, answer_id):
            if new.client_id is not None and (existing := await self._first_copy(session_id, new.client_id)):
                return Accepted(existing, False)  # a retry while its own answer runs: the first copy, not `busy`
            raise Refused(
                "busy", "the assistant is still answering: wait for assistant_response or stop it", status=409
            )
        hits = [(self._limits.message_user, author.user_id), (self._limits.message_ip, author.address)]
        try:
            await self._limiter.hit_all(hits)
        except BaseException as exc:
            if answer_id is not None:
                await self._gate.release(session_id, answer_id)
            retry = isinstance(exc, RateLimited) and new.client_id is not None
            if retry and (existing := await self._first_copy(session_id, str(new.client_id), attempts=1)):
                return Accepted(existing, False)  # a retry is never charged
            raise
        if answer_id is not None:
            self._answers.anticipate(session_id, new.content)
        try:
            posted, indexing = await self._store(session_id, author, new, prepared, answer_id)
        except BaseException:
            await self._undo(session_id, answer_id, hits)
            raise
        if not posted.created:  # a retry: the first copy, no second answer, nothing charged
            await self._undo(session_id, answer_id, hits)
            return Accepted(posted.message, False, posted=posted)
        self._user_messages.inc()
        if indexing is not None:
            self._notices.spawn(self._tell(session_id, author, indexing), name=f"attachment-notice-{posted.message.id}")
        wire = MessageOut.model_validate(posted.message)
        self._outbox.post(session_id, MessageCreated(message=wire), skip_sid=author.sid)
        # the sender's socket reads the session in its ack (one frame instead of two per message)
        session = SessionOut.model_validate(posted.session)
        skip = author.sid if new.session_in_ack else None
        self._outbox.post(session_id, SessionUpdated(session=session), skip_sid=skip)
        handle = None
        if answer_id is not None:
            rag_config = dict(posted.session.rag_config) | (new.rag_overrides or {})
            asked_at = posted.message.created_at
            request = TurnRequest(session_id, posted.message.id, answer_id, author.user_id, asked_at, rag_config)
            handle = self._answers.start(request, follow=new.follow)
        return Accepted(posted.message, True, handle, posted, wire, session)

    async def _first_copy(
        self, session_id: uuid.UUID, client_id: str, attempts: int = REPEAT_LOOKUPS
    ) -> Message | None:
        """The stored copy of a client_id, waiting a little for one another node may be committing right now
        (it took the turn gate with it): only a refusal pays for this."""
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(REPEAT_LOOKUP_SECONDS)
            async with self._sessionmaker() as db:
                existing = await messages.find_by_client_id(db, session_id, client_id)
            if existing is not None:
                return existing
        return None

    async def _undo(self, session_id: uuid.UUID, answer_id: uuid.UUID | None, hits: list[tuple[Any, object]]) -> None:
        """Nothing was stored: free the session and give the allowance back."""
        if answer_id is not None:
            await self._gate.release(session_id, answer_id)
        await self._limiter.refund_all(hits)

    async def _prepare(self, upload: Upload | None) -> PreparedAttachment | None:
        """The attachment checked, sniffed and made safe (off the loop), or a refusal (413/415/422)."""
        if upload is None:
            return None
        if self._attachments is None:
            raise Refused("unsupported_attachment", "this server takes no attachments", status=415)
        try:
            return await self._attachments.prepare(upload.data, upload.filename, upload.mime_type)
        except AttachmentRefused as exc:
            raise Refused(exc.code, str(exc), status=exc.status) from exc

    async def _tell(self, session_id: uuid.UUID, author: Author, task: asyncio.Task[Indexed]) -> None:
        """When an attachment's text could not be read or indexed, tell the sender (its socket, or the
        session's sockets for a REST upload) with an `error` event; the message itself stays."""
        await asyncio.wait([task])  # not `await task`: cancelling this wait must not cancel the indexing
        if task.cancelled() or task.exception() is not None or (notice := task.result().notice) is None:
            return
        error = ErrorEvent(code=notice.code, message=notice.message, refused="user_message")
        self._outbox.post(session_id, error, to=author.sid)

    async def forget_attachment(self, message_id: uuid.UUID) -> None:
        """After a message was deleted: its attachment's session document and vectors go."""
        if self._attachments is not None:
            await self._attachments.forget(message_id)

    async def close(self) -> None:
        """Stop waiting to tell senders about their attachments (shutdown)."""
        await self._notices.close()

    async def _store(
        self,
        session_id: uuid.UUID,
        author: Author,
        new: NewMessage,
        prepared: PreparedAttachment | None = None,
        answer_id: uuid.UUID | None = None,
    ) -> tuple[Posted, asyncio.Task[Indexed] | None]:
        """The recording (if any), then the message (with its attachment and its answer's row); a recording
        whose message is not stored is removed. An attachment's text is indexed after the commit."""
        # time-ordered ids (UUIDv7): a batch's rows go to the end of the primary-key index instead of onto random
        # pages (an SQLite commit writes fewer pages), and no system call per id (uuid4 reads os.urandom each
        # time, letting go of the interpreter lock, which the event loop then waits to take back)
        message_id = uuid7()
        recording = new.recording
        if recording is not None:
            if recording.wav is not None:
                await self._speech.save_wav(author.user_id, message_id, recording.wav)
            elif recording.pcm is not None:
                await self._speech.save_recording(author.user_id, message_id, recording.pcm)
        try:
            posted, row = await self.persist(
                session_id, author.user_id, new, message_id, prepared, author.address, author.username, answer_id
            )
        except BaseException:
            if recording is not None:
                await self._forget_recording(author.user_id, message_id)
            raise
        if recording is not None and not posted.created:  # a retry won a race: the first copy has its own
            await self._forget_recording(author.user_id, message_id)
        indexing = None
        if row is not None and prepared is not None and self._attachments is not None:
            indexing = self._attachments.index(row, prepared)
        return posted, indexing

    async def persist(
        self,
        session_id: uuid.UUID,
        user_id: uuid.UUID,
        new: NewMessage,
        message_id: uuid.UUID,
        prepared: PreparedAttachment | None = None,
        ip: str | None = None,
        username: str | None = None,
        answer_id: uuid.UUID | None = None,
    ) -> tuple[Posted, Attachment | None]:
        """Write one accepted message, and the `streaming` row of its answer `answer_id`: in the next batch
        (turns/writer.py), back once that batch committed; a message with an attachment in a unit of work of
        its own, with the attachment's row, files and audit record (the files are written inside the
        transaction, and removed again if it fails). A retried client_id stores no second attachment, and no
        answer row."""
        row = NewUserMessage(
            id=message_id,
            session_id=session_id,
            user_id=user_id,
            username=username,
            content=new.content,
            content_type=new.content_type,
            client_id=new.client_id,
            audio_url=audio_url(message_id) if new.recording is not None else None,
            created_at=self._writer.stamp(),
            answer_id=answer_id,
            answer_at=self._writer.stamp() if answer_id is not None else None,  # right after its question
        )
        if prepared is None or self._attachments is None:
            return await self._writer.write(row), None
        async with self._sessionmaker() as db:
            (outcome,) = await messages.post_user_messages(db, [row])
            if isinstance(outcome, Exception):
                raise outcome
            if not outcome.created:
                await db.commit()
                return outcome, None
            store = self._attachments.store(
                db, prepared, message=outcome.message, user_id=user_id, ip=ip, request_id=logs.REQUEST_ID.get()
            )
            async with store as attached:
                await db.commit()  # inside: a failed commit removes the files again
        return outcome, attached

    async def _forget_recording(self, user_id: uuid.UUID, message_id: uuid.UUID) -> None:
        path = self._speech.audio_path(user_id, message_id)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(path.unlink, True)
