"""Attach a file to a new message the way the turn intake does, until the REST and socket entry points do."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from pipelines.media.prepare import PreparedAttachment
from pipelines.media.service import Attachments, Indexed
from server import keys
from store import messages, sessions
from store.models import Attachment, ContentType, Message
from store.types import utcnow
from tests.api import Account


async def post_one(
    db: AsyncSession,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    content: str,
    content_type: ContentType,
    answer_id: uuid.UUID | None = None,
) -> messages.Posted:
    """One user message (with its answer's `streaming` row, given `answer_id`) through the batch statement, in
    `db`'s unit of work (the caller commits)."""
    row = messages.NewUserMessage(
        uuid.uuid4(), session_id, user_id, content, content_type, None, None, utcnow(), answer_id=answer_id
    )
    if answer_id is not None:
        row = replace(row, answer_at=row.created_at + timedelta(microseconds=1))
    (outcome,) = await messages.post_user_messages(db, [row])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def attach(
    app: web.Application,
    account: Account,
    session_id: str,
    data: bytes,
    filename: str,
    content: str,
    answer_id: uuid.UUID | None = None,
) -> tuple[Message, Attachment, PreparedAttachment, Indexed]:
    """Prepare, store with the message (and its answer's row) in one unit of work, commit, then index (and wait
    for it)."""
    service: Attachments = app[keys.ATTACHMENTS]
    prepared = await service.prepare(data, filename, "application/octet-stream")
    user_id = uuid.UUID(account.id)
    async with app[keys.SESSIONMAKER]() as db:
        await sessions.get_owned_session(db, uuid.UUID(session_id), user_id)
        posted = await post_one(db, uuid.UUID(session_id), user_id, content, ContentType(prepared.kind), answer_id)
        async with service.store(db, prepared, message=posted.message, user_id=user_id) as row:
            await db.commit()
    indexed = await service.index(row, prepared)
    return posted.message, row, prepared, indexed
