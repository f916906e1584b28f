"""Attachments of user messages. Nothing here commits: the caller's unit of work owns the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from store.cache import mark_stale, messages_key
from store.errors import NotFound
from store.models import Attachment, ChatSession, Message


def add_attachment(db: AsyncSession, message: Message, **fields: object) -> Attachment:
    """Add the attachment of `message` (the message's row must be in this unit of work or stored)."""
    attachment = Attachment(session_id=message.session_id, message_id=message.id, **fields)
    db.add(attachment)
    # the message's wire shape carries it from now on; set as loaded, so no cascade adds the message (which the
    # batch statement inserted, outside this session's identity map) a second time
    set_committed_value(message, "attachment", attachment)
    mark_stale(db, messages_key(message.session_id))
    return attachment


async def get_live_attachment(db: AsyncSession, attachment_id: uuid.UUID) -> Attachment:
    """An attachment of a live message, else `NotFound`: a deleted message hides its attachment (callers
    authorize: the sender, or anyone who may read the session)."""
    row = await db.scalar(
        select(Attachment)
        .join(Message, Message.id == Attachment.message_id)
        .where(Attachment.id == attachment_id, Message.is_deleted.is_(False))
    )
    if row is None:
        raise NotFound("no such attachment")
    return row


async def of_message(db: AsyncSession, message_id: uuid.UUID) -> Attachment | None:
    return await db.scalar(select(Attachment).where(Attachment.message_id == message_id))


async def link_document(db: AsyncSession, attachment_id: uuid.UUID, document_id: uuid.UUID) -> None:
    """Record the session document an attachment's text was indexed as."""
    await db.execute(update(Attachment).where(Attachment.id == attachment_id).values(document_id=document_id))


async def images_of(db: AsyncSession, message_ids: Sequence[uuid.UUID]) -> list[Attachment]:
    """The image attachments of these messages (for a prompt), oldest first."""
    if not message_ids:
        return []
    rows = await db.scalars(
        select(Attachment)
        .where(Attachment.message_id.in_(message_ids), Attachment.content_type.startswith("image/"))
        .order_by(Attachment.created_at)
    )
    return list(rows)


async def of_user(db: AsyncSession, user_id: uuid.UUID) -> list[Attachment]:
    """Every attachment in the user's sessions (export)."""
    rows = await db.scalars(
        select(Attachment)
        .join(ChatSession, ChatSession.id == Attachment.session_id)
        .where(ChatSession.user_id == user_id)
        .order_by(Attachment.created_at, Attachment.id)
    )
    return list(rows)
