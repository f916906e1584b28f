"""Attach a file to a new message the way the turn intake does, until the REST and socket entry points do."""

from __future__ import annotations

import uuid

from aiohttp import web

from pipelines.media.prepare import PreparedAttachment
from pipelines.media.service import Attachments, Indexed
from server import keys
from store import messages, sessions
from store.models import Attachment, ContentType, Message
from tests.api import Account


async def attach(
    app: web.Application, account: Account, session_id: str, data: bytes, filename: str, content: str
) -> tuple[Message, Attachment, PreparedAttachment, Indexed]:
    """Prepare, store with the message in one unit of work, commit, then index (and wait for it)."""
    service: Attachments = app[keys.ATTACHMENTS]
    prepared = await service.prepare(data, filename, "application/octet-stream")
    user_id = uuid.UUID(account.id)
    async with app[keys.SESSIONMAKER]() as db:
        session = await sessions.get_owned_session(db, uuid.UUID(session_id), user_id)
        posted = await messages.post_user_message(
            db, session, user_id=user_id, content=content, content_type=ContentType(prepared.kind)
        )
        async with service.store(db, prepared, message=posted.message, user_id=user_id) as row:
            await db.commit()
    indexed = await service.index(row, prepared)
    return posted.message, row, prepared, indexed
