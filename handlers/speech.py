"""Voice in the chat namespace: audio_start → audio_chunk… → audio_end (or audio_cancel), and tts_request."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from handlers.errors import EventError, parse
from handlers.payloads import Event
from pipelines.speech.audio import SAMPLE_RATE, AudioError, charge_ms, check_pcm16
from pipelines.speech.service import Speech
from pipelines.speech.stt import Utterance
from pipelines.speech.tts import TtsUnavailable
from store import messages, sessions
from store.models import ContentType

if TYPE_CHECKING:
    from handlers.chat import ChatNamespace


class AudioStartIn(Event):
    sample_rate: int = SAMPLE_RATE
    format: Literal["pcm16"] = "pcm16"
    language: str | None = Field(default=None, max_length=16)


class TtsRequestIn(Event):
    message_id: uuid.UUID = Field(strict=False)


@dataclass
class _Open:
    utterance_id: str
    utterance: Utterance
    pcm: list[bytes] = field(default_factory=list)


def voice_of(speech_config: dict[str, Any]) -> tuple[str | None, int]:
    """The voice and words-per-minute rate a session's `speech_config` asks for."""
    voice = speech_config.get("voice")
    rate = speech_config.get("rate", 150)
    return (voice if isinstance(voice, str) else None), (min(max(rate, 80), 300) if isinstance(rate, int) else 150)


def audio_url(message_id: uuid.UUID) -> str:
    return f"/api/v1/chat/messages/{message_id}/audio"


def tts_url(message_id: uuid.UUID) -> str:
    return f"/api/v1/chat/messages/{message_id}/tts"


class SpeechEvents:
    """The voice events of one namespace; one open utterance per socket."""

    def __init__(self, namespace: ChatNamespace, speech: Speech) -> None:
        self.ns = namespace
        self.speech = speech
        self._open: dict[tuple[str, str], _Open] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            "audio_start": self.audio_start,
            "audio_chunk": self.audio_chunk,
            "audio_end": self.audio_end,
            "audio_cancel": self.audio_cancel,
            "tts_request": self.tts_request,
        }

    async def audio_start(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: AudioStartIn = parse(AudioStartIn, data)
        if body.sample_rate != SAMPLE_RATE:
            raise EventError("unsupported_sample_rate", f"send pcm16 at {SAMPLE_RATE} Hz mono")
        if (namespace, sid) in self._open:
            raise EventError("utterance_open", "finish or cancel the current utterance first")
        utterance_id = uuid.uuid4().hex

        async def on_partial(revision: int, text: str) -> None:
            await self.ns.emit(
                "transcript_partial",
                {"utterance_id": utterance_id, "rev": revision, "text": text},
                namespace=namespace,
            )

        async def on_idle() -> None:  # the client went quiet: free the STT work and say why
            if (current := self._open.get((namespace, sid))) is not None and current.utterance_id == utterance_id:
                del self._open[(namespace, sid)]
                seconds = self.speech.limits.utterance_idle_seconds
                error = {"code": "utterance_timeout", "message": f"no audio for {seconds:.0f} s: utterance dropped"}
                await self.ns.emit("error", {**error, "utterance_id": utterance_id}, to=sid, namespace=namespace)

        user_id, _ = await self.ns.who(namespace, sid)
        utterance = await self.speech.utterance(on_partial, owner=user_id, on_idle=on_idle)
        self._open[(namespace, sid)] = _Open(utterance_id, utterance)
        return {"ok": True, "utterance_id": utterance_id}

    async def audio_chunk(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
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
        limits = self.ns.ctx.limits  # audio seconds per minute, counted in milliseconds of speech
        await self.ns.charge(namespace, sid, limits.audio_user, limits.audio_ip, cost=charge_ms(len(data)))
        try:
            current.utterance.feed(data)
        except AudioError as exc:
            raise EventError(exc.code, str(exc)) from exc
        current.pcm.append(data)
        return {"ok": True}

    async def audio_end(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        current = self._open.pop((namespace, sid), None)
        if current is None:
            raise EventError("no_utterance", "send audio_start first")
        started = time.monotonic()
        text = (await current.utterance.finish()).strip()
        self.speech.observe("stt", time.monotonic() - started)
        if not text:
            raise EventError("no_speech", "no speech was recognized")
        user_id, _ = await self.ns.who(namespace, sid)
        message_id = uuid.uuid4()
        await self.speech.save_recording(user_id, message_id, b"".join(current.pcm))
        ack = await self.ns.accept_message(
            namespace,
            sid,
            content=text,
            content_type=ContentType.audio,
            message_id=message_id,
            audio_url=audio_url(message_id),
        )
        final = {"utterance_id": current.utterance_id, "text": text, "message": ack["message"]}
        await self.ns.emit("transcript_final", final, namespace=namespace)
        return {"ok": True, **final}

    async def audio_cancel(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        return {"ok": True, "cancelled": await self.drop(namespace, sid)}

    async def drop(self, namespace: str, sid: str) -> bool:
        """Forget the socket's open utterance, if any (also on disconnect)."""
        current = self._open.pop((namespace, sid), None)
        if current is not None:
            await current.utterance.cancel()
        return current is not None

    async def tts_request(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: TtsRequestIn = parse(TtsRequestIn, data)
        _, session_id = await self.ns.who(namespace, sid)
        async with self.ns.ctx.sessionmaker() as db:
            message = await messages.get_in_session(db, body.message_id, session_id)
            session = await sessions.get_session(db, session_id)
        voice, rate = voice_of(session.speech_config)
        try:
            synthesis = await self.speech.synthesize(message.content, voice=voice, rate=rate)
        except TtsUnavailable as exc:
            raise EventError("tts_unavailable", str(exc)) from exc
        ready = {"message_id": str(message.id), "audio_url": tts_url(message.id), "duration": synthesis.duration}
        await self.ns.emit("tts_ready", ready, to=sid, namespace=namespace)
        return {"ok": True, **ready}
