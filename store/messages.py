"""Messages: immutable history with edits (`edited_at`) and soft deletes."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from store.cache import mark_stale, messages_key, session_key
from store.errors import Conflict, Forbidden, NotFound
from store.models import ChatSession, ContentType, Message, MessageType
from store.types import utcnow

TITLE_CHARS = 60


@dataclass(frozen=True)
class Posted:
    """The outcome of posting a user message: the row, and whether this call created it."""

    message: Message
    created: bool
    session: ChatSession


def title_from(content: str) -> str:
    """A session title from a first message: whitespace folded, at most TITLE_CHARS characters."""
    folded = re.sub(r"\s+", " ", content).strip()
    return folded[:TITLE_CHARS].rstrip()


async def find_by_client_id(db: AsyncSession, session_id: uuid.UUID, client_id: str) -> Message | None:
    """The message a client already sent under `client_id` in this session, if any."""
    return await _by_client_id(db, session_id, client_id)


async def get_in_session(db: AsyncSession, message_id: uuid.UUID, session_id: uuid.UUID) -> Message:
    """A message of the given session (deleted ones included), or `NotFound`."""
    message = await db.get(Message, message_id)
    if message is None or message.session_id != session_id:
        raise NotFound("no such message")
    return message


async def _by_client_id(db: AsyncSession, session_id: uuid.UUID, client_id: str) -> Message | None:
    return await db.scalar(select(Message).where(Message.session_id == session_id, Message.client_id == client_id))


async def post_user_message(
    db: AsyncSession,
    session: ChatSession,
    *,
    user_id: uuid.UUID,
    content: str,
    content_type: ContentType = ContentType.text,
    client_id: str | None = None,
    audio_url: str | None = None,
    message_id: uuid.UUID | None = None,
) -> Posted:
    """Store a user message exactly once per `client_id`, titling the session and bumping its activity."""
    if session.is_archived:
        raise Conflict("the session is archived and read-only", code="session_archived")
    session_id = session.id
    if client_id is not None and (existing := await _by_client_id(db, session_id, client_id)) is not None:
        return Posted(existing, False, session)
    now = utcnow()
    message = Message(
        id=message_id or uuid.uuid4(),
        session_id=session_id,
        user_id=user_id,
        message_type=MessageType.user,
        content_type=content_type,
        content=content,
        client_id=client_id,
        audio_url=audio_url,
        created_at=now,
    )
    try:
        db.add(message)
        await db.flush()  # the unique (session_id, client_id) index speaks here
        bumped = await _bump_session(db, session_id, now, title_source=content)
    except IntegrityError:
        # the same client_id won a race on another task or node: return the first copy
        await db.rollback()  # expires every loaded object: only use the ids captured above
        if client_id is None or (existing := await _by_client_id(db, session_id, client_id)) is None:
            raise
        await db.refresh(session)
        return Posted(existing, False, session)
    for name, value in bumped.items():  # what the UPDATE wrote, from RETURNING: no SELECT after it
        set_committed_value(session, name, value)
    return Posted(message, True, session)


async def _bump_session(
    db: AsyncSession, session_id: uuid.UUID, now: datetime, *, title_source: str | None = None
) -> dict[str, object]:
    """Count the message and stamp the activity atomically in SQL (no lost updates between tasks or nodes)."""
    title = title_from(title_source) if title_source and title_source.strip() else None
    result = await db.execute(
        update(ChatSession)
        .where(ChatSession.id == session_id)
        .values(
            last_message_at=now,
            message_count=ChatSession.message_count + 1,
            title=func.coalesce(ChatSession.title, title),
        )
        .returning(ChatSession.last_message_at, ChatSession.message_count, ChatSession.title, ChatSession.updated_at)
        .execution_options(synchronize_session=False)
    )
    mark_stale(db, session_key(session_id), messages_key(session_id))
    return dict(row._mapping) if (row := result.first()) is not None else {}


async def get_owned_message(db: AsyncSession, message_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Message, ChatSession]:
    """A message in a session the user owns, with that session; otherwise `NotFound`."""
    row = (
        await db.execute(
            select(Message, ChatSession)
            .join(ChatSession, ChatSession.id == Message.session_id)
            .where(Message.id == message_id, ChatSession.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("no such message")
    return row[0], row[1]


async def list_messages(
    db: AsyncSession,
    session_id: uuid.UUID,
    *,
    limit: int,
    offset: int,
    include_deleted: bool = False,
    newest: bool = False,
) -> tuple[list[Message], int]:
    """A session's messages in chronological order (with `newest`, the last `limit` of them), and how
    many there are in all."""
    where = [Message.session_id == session_id]
    if not include_deleted:
        where.append(Message.is_deleted.is_(False))
    order = (Message.created_at.desc(), Message.id.desc()) if newest else (Message.created_at, Message.id)
    rows = list(await db.scalars(select(Message).where(*where).order_by(*order).limit(limit).offset(offset)))
    total = await db.scalar(select(func.count()).select_from(Message).where(*where))
    return (rows[::-1] if newest else rows), int(total or 0)


async def messages_after(
    db: AsyncSession, session_id: uuid.UUID, after: Message | None, *, limit: int | None = None
) -> list[Message]:
    """The session's messages created after `after` (from the first when None), deleted ones included,
    at most `limit` of them, oldest first."""
    query = select(Message).where(Message.session_id == session_id)
    if after is not None:
        query = query.where(
            or_(
                Message.created_at > after.created_at,
                and_(Message.created_at == after.created_at, Message.id > after.id),
            )
        )
    return list(await db.scalars(query.order_by(Message.created_at, Message.id).limit(limit)))


async def edit_message(
    db: AsyncSession, message: Message, session: ChatSession, *, user_id: uuid.UUID, content: str
) -> Message:
    """Change the text of the caller's own, live user message and stamp `edited_at`."""
    if session.is_archived:
        raise Conflict("the session is archived and read-only", code="session_archived")
    if message.message_type is not MessageType.user or message.user_id != user_id:
        raise Forbidden("only your own messages can be edited", code="not_editable")
    if message.is_deleted:
        raise Conflict("the message was deleted", code="message_deleted")
    message.content = content
    message.edited_at = utcnow()
    await db.flush()
    return message


async def delete_message(db: AsyncSession, message: Message, session: ChatSession) -> Message:
    """Soft-delete a message of the caller's session; deleting twice is harmless."""
    if session.is_archived:
        raise Conflict("the session is archived and read-only", code="session_archived")
    if not message.is_deleted:
        message.is_deleted = True
        await db.flush()
    return message
