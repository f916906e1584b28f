"""Speech over REST: stored recordings, text-to-speech of messages, speech uploads, engine status."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import BodyPartReader, web
from pydantic import BaseModel

from pipelines.speech.audio import AudioError
from pipelines.speech.tts import TtsUnavailable
from server import keys
from server.deps import authenticate, client_ip, db_session, message_for, session_for
from server.endpoints import Endpoint, json_response
from server.errors import ApiError
from server.routes.documents import MALFORMED
from server.validation import path_uuid
from store.models import ContentType
from store.schemas import MessageOut
from turns.access import Need
from turns.intake import Author, NewMessage, Recording
from turns.voice import tts_url, voice_of

AUDIO_STATUS = {"unsupported_audio": 415, "unsupported_sample_rate": 415, "stt_busy": 429}


class TtsOut(BaseModel):
    audio_url: str
    duration: float


class SpeechOut(BaseModel):
    transcript: str
    message: MessageOut
    answer: MessageOut


class SpeechStatus(BaseModel):
    stt: dict[str, Any]
    tts: dict[str, Any]
    ffmpeg: bool


def _wav(path: Any) -> web.FileResponse:
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "private, max-age=3600"})


async def recording(request: web.Request) -> web.StreamResponse:
    """The audio of a voice message of a session I am in (16 kHz WAV); `?token=` works for `<audio src>`."""
    async with db_session(request) as db:
        user = await authenticate(request, db, query_token=True)
        message, _ = await message_for(request, db, path_uuid(request, "message_id"), user.id)
    if message.user_id is None or message.content_type is not ContentType.audio:
        raise ApiError(404, "not_found", "this message has no recording")
    path = request.app[keys.SPEECH].audio_path(message.user_id, message.id)  # kept under its author's folder
    if not await asyncio.to_thread(path.is_file):
        raise ApiError(404, "not_found", "this message has no recording")
    return _wav(path)


async def _synthesize(request: web.Request, *, query_token: bool) -> Any:
    async with db_session(request) as db:
        user = await authenticate(request, db, query_token=query_token)
        message, session = await message_for(request, db, path_uuid(request, "message_id"), user.id)
    voice, rate = voice_of(session.speech_config)
    try:
        return message, await request.app[keys.SPEECH].synthesize(message.content, voice=voice, rate=rate)
    except TtsUnavailable as exc:
        raise ApiError(503, "tts_unavailable", str(exc)) from exc


async def create_tts(request: web.Request) -> web.Response:
    """Speak a message: `{audio_url, duration}`, cached by text, voice and rate."""
    message, synthesis = await _synthesize(request, query_token=False)
    return json_response(TtsOut(audio_url=tts_url(message.id), duration=round(synthesis.duration, 3)))


async def get_tts(request: web.Request) -> web.StreamResponse:
    """The spoken message as WAV, to the session's owner and members only."""
    _, synthesis = await _synthesize(request, query_token=True)
    return _wav(synthesis.path)


async def _upload_bytes(request: web.Request, limit: int) -> bytes:
    if request.content_type.startswith("multipart/"):
        try:
            async for part in await request.multipart():
                if isinstance(part, BodyPartReader) and part.name == "file":
                    data = bytearray()
                    while chunk := await part.read_chunk(64 * 1024):
                        data += chunk
                        if len(data) > limit:
                            raise ApiError(413, "payload_too_large", f"audio uploads hold at most {limit} bytes")
                    return bytes(data)
        except MALFORMED as exc:
            raise ApiError(400, "bad_request", f"the multipart body is malformed: {exc}") from exc
        raise ApiError(422, "validation_error", "the form needs a `file` field")
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise ApiError(413, "payload_too_large", f"audio uploads hold at most {limit} bytes")
    return bytes(data)


async def speech_upload(request: web.Request) -> web.Response:
    """Transcribe a recording, store it as a voice message and answer it: `{transcript, message, answer}`.

    The recording is stored only when the message is accepted; a refused upload (`busy`, `rate_limited`)
    leaves nothing behind and can be sent again.
    """
    speech = request.app[keys.SPEECH]
    async with db_session(request) as db:
        user = await authenticate(request, db)
        session, _ = await session_for(request, db, path_uuid(request, "session_id"), user.id, Need.write)
    data = await _upload_bytes(request, speech.limits.max_upload_bytes)
    if not data:
        raise ApiError(422, "validation_error", "send a WAV body (or multipart field `file`)")
    try:
        transcript, wav = await speech.transcribe(data, owner=user.id)
    except AudioError as exc:
        raise ApiError(AUDIO_STATUS.get(exc.code, 422), exc.code, str(exc)) from exc
    if not transcript:
        raise ApiError(422, "no_speech", "no speech was recognized")
    new = NewMessage(transcript, content_type=ContentType.audio, recording=Recording(wav=wav), follow=True)
    author = Author(user.id, client_ip(request), username=user.username)
    accepted = await request.app[keys.INTAKE].accept(session.id, author, new)
    assert accepted.answer is not None, "a new message with answer=True always starts one"
    final = await accepted.answer.response()
    if final is None:
        raise ApiError(503, "unavailable", "the answer was lost; see the session's history")
    return json_response(SpeechOut(transcript=transcript, message=accepted.payload(), answer=final.message))


async def status(request: web.Request) -> web.Response:
    """Which speech engines and models this server has, and why one is missing."""
    async with db_session(request) as db:
        await authenticate(request, db)
    report = await asyncio.to_thread(request.app[keys.SPEECH].status)  # it looks at the filesystem
    return json_response(SpeechStatus.model_validate(report))


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/v1/chat/messages/{message_id}/audio",
        recording,
        "The recording of a voice message",
        "speech",
        errors=(401, 404),
    ),
    Endpoint(
        "POST",
        "/api/v1/chat/messages/{message_id}/tts",
        create_tts,
        "Speak a message (cached)",
        "speech",
        response=TtsOut,
        errors=(401, 404, 503),
    ),
    Endpoint(
        "GET",
        "/api/v1/chat/messages/{message_id}/tts",
        get_tts,
        "A message spoken, as WAV",
        "speech",
        errors=(401, 404, 503),
    ),
    Endpoint(
        "POST",
        "/api/v1/chat/sessions/{session_id}/speech",
        speech_upload,
        "Ask by voice: a WAV body or multipart `file`; transcribed, stored and answered",
        "speech",
        response=SpeechOut,
        errors=(400, 401, 403, 404, 409, 413, 415, 422, 429),
    ),
    Endpoint(
        "GET",
        "/api/v1/speech/status",
        status,
        "Speech engines and models",
        "speech",
        response=SpeechStatus,
        errors=(401,),
    ),
)
