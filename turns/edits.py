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
from store.errors import Forbidden, NotFound
from store.models import ChatSession, Message
from store.schemas import MessageOut
from turns.access import Access, Need, Role
from turns.broadcast import Broadcaster
from turns.intake import Author
from turns.wire import MessageDeleted, MessageUpdated


async def edit_message(
    sessionmaker: async_sessionmaker[AsyncSession],
    access: Access,
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
        message, session, _ = await _writable(db, access, author, message_id, session_id)
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
    access: Access,
    broadcaster: Broadcaster,
    author: Author,
    message_id: uuid.UUID,
    *,
    session_id: uuid.UUID | None = None,
) -> MessageOut:
    """Soft-delete a message (of `session_id`, when given) and announce it; the deleted message. The owner
    may delete any message of the session, a member only their own. Deleting a deleted message changes and
    sends nothing."""
    async with sessionmaker() as db:
        message, session, role = await _writable(db, access, author, message_id, session_id)
        if role is not Role.owner and message.user_id != author.user_id:
            raise Forbidden("members delete only their own messages", code="forbidden")
        deleted = await messages.delete_message(db, message, session)
        _audit(db, author, "message_delete", message_id)
        if deleted is None:
            await db.refresh(message)  # deleted by someone else: as stored
        await db.commit()
    out = MessageOut.model_validate(deleted or message)
    if deleted is not None:  # the one winner announces; nothing can change the message after this
        await broadcaster.emit(out.session_id, MessageDeleted(message=out), skip_sid=author.sid)
    return out


async def _writable(
    db: AsyncSession, access: Access, author: Author, message_id: uuid.UUID, session_id: uuid.UUID | None
) -> tuple[Message, ChatSession, Role]:
    """The message, its session and the author's role there, which must let them write; a message of a
    session they are a stranger to is not found."""
    message, session = await messages.get_with_session(db, message_id)
    if session_id is not None and session.id != session_id:
        raise NotFound("no such message")
    try:
        role = await access.require(session.id, author.user_id, Need.write, db)
    except NotFound:
        raise NotFound("no such message") from None
    return message, session, role


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
