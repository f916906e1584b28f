"""Editing and deleting a message, from a socket or REST: one winner per race, events in the order of the changes.

A change is committed first, then announced. An edit is announced under the row's lock (`lock_live`), with
the message as stored at that moment, so a delete waits for the announcement and no `message_updated` can
follow a `message_deleted`: once a message is deleted, edits are refused `message_deleted` and the lock is
not granted. Two edits are announced in the order they took the lock, each with the latest text.
Across nodes, Redis carries each node's events in order; see docs/protocol.md for the one caveat.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import logs
from store import audit, messages
from store.errors import NotFound
from store.models import ChatSession, Message
from store.schemas import MessageOut
from turns.broadcast import Broadcaster
from turns.intake import Author
from turns.wire import MessageDeleted, MessageUpdated


async def edit_message(
    sessionmaker: async_sessionmaker[AsyncSession],
    broadcaster: Broadcaster,
    author: Author,
    message_id: uuid.UUID,
    content: str,
    *,
    session_id: uuid.UUID | None = None,
) -> MessageOut:
    """Store an edit of the author's own message (of `session_id`, when given) and announce it; the message
    as edited. A deleted message is refused `message_deleted`, and then nothing is stored or sent."""
    async with sessionmaker() as db:
        message, session = await _owned(db, author, message_id, session_id)
        edited = MessageOut.model_validate(
            await messages.edit_message(db, message, session, user_id=author.user_id, content=content)
        )
        _audit(db, author, "message_edit", message_id)
        await db.commit()
    async with sessionmaker() as db:
        live = await messages.lock_live(db, message_id)
        if live is not None:  # None: deleted since the commit, and message_deleted said everything
            updated = MessageUpdated(message=MessageOut.model_validate(live))
            await broadcaster.emit(live.session_id, updated, skip_sid=author.sid)
        await db.commit()
    return edited


async def delete_message(
    sessionmaker: async_sessionmaker[AsyncSession],
    broadcaster: Broadcaster,
    author: Author,
    message_id: uuid.UUID,
    *,
    session_id: uuid.UUID | None = None,
) -> MessageOut:
    """Soft-delete a message of the author's session (of `session_id`, when given) and announce it; the
    deleted message. Deleting a deleted message changes and sends nothing."""
    async with sessionmaker() as db:
        message, session = await _owned(db, author, message_id, session_id)
        deleted = await messages.delete_message(db, message, session)
        _audit(db, author, "message_delete", message_id)
        if deleted is None:
            await db.refresh(message)  # deleted by someone else: as stored
        await db.commit()
    out = MessageOut.model_validate(deleted or message)
    if deleted is not None:  # the one winner announces; nothing can change the message after this
        await broadcaster.emit(out.session_id, MessageDeleted(message=out), skip_sid=author.sid)
    return out


async def _owned(
    db: AsyncSession, author: Author, message_id: uuid.UUID, session_id: uuid.UUID | None
) -> tuple[Message, ChatSession]:
    message, session = await messages.get_owned_message(db, message_id, author.user_id)
    if session_id is not None and session.id != session_id:
        raise NotFound("no such message")
    return message, session


def _audit(db: AsyncSession, author: Author, action: str, message_id: uuid.UUID) -> None:
    """An audit event in the change's unit of work: it commits with the change, or not at all."""
    audit.record(
        db,
        action,
        user_id=author.user_id,
        target_type="message",
        target_id=message_id,
        ip=author.address,
        request_id=logs.REQUEST_ID.get(),
        details={"via": "socket" if author.sid is not None else "rest"},
    )
