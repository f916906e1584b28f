"""Voice in the chat namespace: audio_start → audio_chunk… → audio_end (or audio_cancel), and tts_request.

A finished utterance goes through the turn intake; its recording is stored only when the message is
accepted. Refused as `busy` or `rate_limited`, the utterance is kept: `audio_end` again retries it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from core.errors import Refused
from core.ratelimit import RateLimited
from handlers.context import ChatContext, Connection
from handlers.errors import EventError, parse
from pipelines.speech.audio import SAMPLE_RATE, AudioError, charge_ms, check_pcm16
from pipelines.speech.stt import Utterance
from pipelines.speech.tts import TtsUnavailable
from store import messages, sessions
from store.models import ContentType
from store.schemas import MessageOut
from turns.intake import NewMessage, Recording
from turns.voice import tts_url, voice_of
from turns.wire import (
    Ack,
    AudioCancelAck,
    AudioEndAck,
    AudioStartAck,
    AudioStartIn,
    ErrorEvent,
    TranscriptFinal,
    TranscriptPartial,
    TtsAck,
    TtsReady,
    TtsRequestIn,
)


@dataclass
class _Open:
    utterance_id: str
    utterance: Utterance
    pcm: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class _Kept:
    """A transcribed utterance whose message was refused for now: retried by the next audio_end."""

    utterance_id: str
    text: str
    pcm: bytes


class SpeechEvents:
    """The voice events of one namespace; one open (or kept) utterance per socket."""

    def __init__(self, connection: Connection, context: ChatContext) -> None:
        self.conn, self.ctx = connection, context
        self.speech = context.speech
        self._open: dict[tuple[str, str], _Open] = {}
        self._kept: dict[tuple[str, str], _Kept] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            "audio_start": self.audio_start,
            "audio_chunk": self.audio_chunk,
            "audio_end": self.audio_end,
            "audio_cancel": self.audio_cancel,
            "tts_request": self.tts_request,
        }

    async def audio_start(self, namespace: str, sid: str, data: Any) -> Ack:
        body: AudioStartIn = parse(AudioStartIn, data)
        if body.sample_rate != SAMPLE_RATE:
            raise EventError("unsupported_sample_rate", f"send pcm16 at {SAMPLE_RATE} Hz mono")
        if (namespace, sid) in self._open:
            raise EventError("utterance_open", "finish or cancel the current utterance first")
        user_id, session_id = await self.conn.who(namespace, sid)
        self._kept.pop((namespace, sid), None)  # a new utterance replaces one kept for a retry
        utterance_id = uuid.uuid4().hex

        async def on_partial(revision: int, text: str) -> None:
            partial = TranscriptPartial(utterance_id=utterance_id, rev=revision, text=text)
            await self.ctx.broadcaster.emit(session_id, partial)

        async def on_idle() -> None:  # the client went quiet: free the STT work and say why
            if (current := self._open.get((namespace, sid))) is not None and current.utterance_id == utterance_id:
                del self._open[(namespace, sid)]
                seconds = self.speech.limits.utterance_idle_seconds
                message = f"no audio for {seconds:.0f} s: utterance dropped"
                timeout = ErrorEvent(code="utterance_timeout", message=message, utterance_id=utterance_id)
                await self.ctx.broadcaster.emit(session_id, timeout, to=sid)

        utterance = await self.speech.utterance(on_partial, owner=user_id, on_idle=on_idle)
        self._open[(namespace, sid)] = _Open(utterance_id, utterance)
        return AudioStartAck(utterance_id=utterance_id)

    async def audio_chunk(self, namespace: str, sid: str, data: Any) -> Ack:
        current = self._open.get((namespace, sid))
        if current is None:
            raise EventError("no_utterance", "send audio_start first")
        if not isinstance(data, bytes):
            raise EventError("invalid_payload", "audio_chunk takes binary pcm16")
        if len(data) > self.speech.limits.max_chunk_bytes:
            raise EventError("chunk_too_large", f"chunks hold at most {self.speech.limits.max_chunk_bytes} bytes")
        try:
            check_pcm16(data)
        except AudioError as exc:
            raise EventError(exc.code, str(exc)) from exc
        if current.utterance.seconds + len(data) / 2 / SAMPLE_RATE > self.speech.limits.max_utterance_seconds:
            await self.drop(namespace, sid)
            raise EventError(
                "utterance_too_long", f"an utterance lasts at most {self.speech.limits.max_utterance_seconds:.0f} s"
            )
        user_id, _ = await self.conn.who(namespace, sid)
        limits = self.ctx.limits  # audio seconds per minute, counted in milliseconds of speech
        await self.ctx.limiter.hit_all(
            [(limits.audio_user, user_id), (limits.audio_ip, await self.conn.address(namespace, sid))],
            cost=charge_ms(len(data)),
        )
        try:
            current.utterance.feed(data)
        except AudioError as exc:
            raise EventError(exc.code, str(exc)) from exc
        current.pcm.append(data)
        return Ack()

    async def audio_end(self, namespace: str, sid: str, data: Any) -> Ack:
        kept = await self._finish(namespace, sid)
        author, session_id = await self.conn.author(namespace, sid)
        new = NewMessage(
            kept.text,
            content_type=ContentType.audio,
            recording=Recording(pcm=kept.pcm),
            answer=self.ctx.auto_answer,
        )
        try:
            accepted = await self.ctx.intake.accept(session_id, author, new)
        except (Refused, RateLimited) as exc:
            if isinstance(exc, RateLimited):
                exc = Refused("rate_limited", str(exc), 429, retry_after=exc.retry_after)
            if exc.code in ("busy", "rate_limited"):
                self._kept[(namespace, sid)] = kept
                exc.details = {"utterance_id": kept.utterance_id, "kept": True}
            raise exc from None
        message = MessageOut.model_validate(accepted.message)
        final = TranscriptFinal(utterance_id=kept.utterance_id, text=kept.text, message=message)
        await self.ctx.broadcaster.emit(session_id, final)
        return AudioEndAck(utterance_id=final.utterance_id, text=final.text, message=message)

    async def _finish(self, namespace: str, sid: str) -> _Kept:
        """The socket's utterance, transcribed: the open one, or the one kept from a refused audio_end."""
        current = self._open.pop((namespace, sid), None)
        if current is None:
            kept = self._kept.pop((namespace, sid), None)
            if kept is None:
                raise EventError("no_utterance", "send audio_start first")
            return kept
        started = time.monotonic()
        text = (await current.utterance.finish()).strip()
        self.speech.observe("stt", time.monotonic() - started)
        if not text:
            raise EventError("no_speech", "no speech was recognized")
        return _Kept(current.utterance_id, text, b"".join(current.pcm))

    async def audio_cancel(self, namespace: str, sid: str, data: Any) -> Ack:
        kept = self._kept.pop((namespace, sid), None) is not None
        return AudioCancelAck(cancelled=await self.drop(namespace, sid) or kept)

    async def drop(self, namespace: str, sid: str) -> bool:
        """Forget the socket's open utterance, if any (also on disconnect)."""
        current = self._open.pop((namespace, sid), None)
        if current is not None:
            await current.utterance.cancel()
        return current is not None

    def forget(self, namespace: str, sid: str) -> None:
        """Forget everything of a socket that went away."""
        self._kept.pop((namespace, sid), None)

    async def tts_request(self, namespace: str, sid: str, data: Any) -> Ack:
        body: TtsRequestIn = parse(TtsRequestIn, data)
        _, session_id = await self.conn.who(namespace, sid)
        async with self.ctx.sessionmaker() as db:
            message = await messages.get_in_session(db, body.message_id, session_id)
            session = await sessions.get_session(db, session_id)
        voice, rate = voice_of(session.speech_config)
        try:
            synthesis = await self.speech.synthesize(message.content, voice=voice, rate=rate)
        except TtsUnavailable as exc:
            raise EventError("tts_unavailable", str(exc)) from exc
        ready = TtsReady(message_id=message.id, audio_url=tts_url(message.id), duration=synthesis.duration)
        await self.ctx.broadcaster.emit(session_id, ready, to=sid)
        return TtsAck(message_id=ready.message_id, audio_url=ready.audio_url, duration=ready.duration)
