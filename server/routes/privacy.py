"""The user's own data: export all of it, or erase all of it."""

from __future__ import annotations

import asyncio
import shutil

from aiohttp import web

from server import keys
from server.deps import audit, authenticate, db_session
from server.endpoints import Endpoint, json_response
from server.schemas import EraseOut, ExportOut
from store import privacy
from turns.voice import voice_of
from turns.wire import ErrorEvent

PREFIX = "/api/v1/users/me"


async def export_me(request: web.Request) -> web.Response:
    """Everything stored about me as one JSON document."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        data = await privacy.export_user(db, user.id)
        audit(request, db, "export", user_id=user.id, target_type="user", target_id=user.id)
        await db.commit()
    response = json_response(ExportOut.model_validate(data))
    response.headers["Content-Disposition"] = f'attachment; filename="parley-export-{user.username}.json"'
    return response


async def erase_me(request: web.Request) -> web.Response:
    """Erase my account and everything of mine: rows, vectors, stored documents, attachments and recordings.

    Recordings and vectors go first: if the process dies midway, a retry (the account still exists)
    finishes the job. Open sockets of my sessions hear `error {code: "account_erased"}`.
    """
    app = request.app
    speech = app[keys.SPEECH]
    async with db_session(request) as db:
        user = await authenticate(request, db)
        spoken = await privacy.assistant_texts(db, user.id)
    await app[keys.ATTACHMENTS].erase_owner(user.id)  # first: it stops indexing that would add documents
    await app[keys.INGESTOR].erase_owner(user.id)
    await asyncio.to_thread(shutil.rmtree, speech.audio_dir / user.id.hex, ignore_errors=True)
    for text, speech_config in spoken:  # synthesized answers, in the voice their session uses
        voice, rate = voice_of(speech_config)
        await speech.forget_synthesis(text, voice=voice, rate=rate)
    async with db_session(request) as db:
        counts, session_ids = await privacy.erase_user(db, user.id)
        audit(request, db, "erase", user_id=user.id, target_type="user", target_id=user.id, details=counts)
        await db.commit()
    for session_id in session_ids:
        erased = ErrorEvent(code="account_erased", message="this account was erased")
        await app[keys.BROADCASTER].emit(session_id, erased)
    return json_response(EraseOut(erased=counts))


ENDPOINTS = (
    Endpoint("GET", f"{PREFIX}/export", export_me, "Export all my data", "users", response=ExportOut, errors=(401,)),
    Endpoint("DELETE", PREFIX, erase_me, "Erase my account and all my data", "users", response=EraseOut, errors=(401,)),
)
