"""Messages: immutable history with edits (`edited_at`) and soft deletes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import String, Table, Uuid, and_, bindparam, func, inspect, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from store.cache import mark_stale, messages_key, session_key, stale_keys
from store.errors import Conflict, Forbidden, NotFound, StoreError
from store.models import ChatSession, ContentType, Message, MessageStatus, MessageType, User
from store.types import UTCDateTime, utcnow

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
    return await db.scalar(select(Message).where(Message.session_id == session_id, Message.client_id == client_id))


async def get_in_session(db: AsyncSession, message_id: uuid.UUID, session_id: uuid.UUID) -> Message:
    """A message of the given session (deleted ones included), or `NotFound`."""
    message = await db.get(Message, message_id)
    if message is None or message.session_id != session_id:
        raise NotFound("no such message")
    return message


@dataclass(frozen=True)
class NewUserMessage:
    """A user message accepted by the intake, waiting for its batch."""

    id: uuid.UUID
    session_id: uuid.UUID
    user_id: uuid.UUID
    content: str
    content_type: ContentType
    client_id: str | None
    audio_url: str | None
    created_at: datetime
    #: the author's username, for the message's wire shape; None: read from the database with the batch
    username: str | None = None


async def post_user_messages(db: AsyncSession, rows: Sequence[NewUserMessage]) -> list[Posted | StoreError]:
    """Store a batch of user messages in the caller's transaction (nothing commits here), in four statements
    whatever the batch size: lock the sessions, one multi-row insert that skips repeated client_ids, read the
    first copies of those, one update of every session's counters. Per row: the outcome, or the refusal
    (`not_found`, `session_archived`) of a row whose session is gone or archived."""
    session_ids = sorted({row.session_id for row in rows})
    if db.get_bind().dialect.name == "postgresql":  # one statement text whatever the count: prepared once
        among = ChatSession.id == func.any(bindparam("ids", session_ids, type_=postgresql.ARRAY(Uuid)))
    else:
        among = ChatSession.id.in_(session_ids)
    locked = await db.scalars(select(ChatSession).where(among).order_by(ChatSession.id).with_for_update())
    live = {session.id: session for session in locked}
    outcomes: dict[uuid.UUID, Posted | StoreError] = {}
    accepted = []
    for row in rows:
        session = live.get(row.session_id)
        if session is None:
            outcomes[row.id] = NotFound("no such session")
        elif session.is_archived:
            outcomes[row.id] = Conflict("the session is archived and read-only", code="session_archived")
        else:
            accepted.append(row)
    if not accepted:
        return [outcomes[row.id] for row in rows]
    inserted = await _insert_skipping_repeats(db, accepted)
    names = {row.user_id: row.username for row in accepted if row.username is not None}
    unnamed = {row.user_id for row in accepted} - names.keys()
    if unnamed:  # callers that did not know the author's name (none of the app's entry points)
        known = await db.execute(select(User.id, User.username).where(User.id.in_(unnamed)))
        names.update((found[0], found[1]) for found in known)
    created = [row for row in accepted if row.id in inserted]
    firsts = await _first_copies(db, [row for row in accepted if row.id not in inserted])
    if created:
        await _bump_sessions(db, live, created)
    for row in accepted:
        session = live[row.session_id]
        if row.id in inserted:
            outcomes[row.id] = Posted(_message_of(row, names.get(row.user_id)), True, session)
        else:
            first = firsts.get((row.session_id, row.client_id))
            outcomes[row.id] = Posted(first, False, session) if first is not None else NotFound("no such message")
    return [outcomes[row.id] for row in rows]


async def _insert_skipping_repeats(db: AsyncSession, rows: Sequence[NewUserMessage]) -> set[uuid.UUID]:
    """INSERT … ON CONFLICT (session_id, client_id) DO NOTHING RETURNING id, as one multi-row statement
    (SQLAlchemy's "insertmanyvalues": compiled once, expanded per batch); the ids stored."""
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, Message.__table__)
    statement = insert(table).on_conflict_do_nothing(index_elements=["session_id", "client_id"]).returning(table.c.id)
    values = [
        {
            "id": row.id,
            "session_id": row.session_id,
            "user_id": row.user_id,
            "message_type": MessageType.user,
            "content_type": row.content_type,
            "content": row.content,
            "audio_url": row.audio_url,
            "status": MessageStatus.complete,
            "client_id": row.client_id,
            "created_at": row.created_at,
            "is_deleted": False,
        }
        for row in rows
    ]
    return set((await db.execute(statement, values)).scalars())


async def _first_copies(
    db: AsyncSession, repeats: Sequence[NewUserMessage]
) -> dict[tuple[uuid.UUID, str | None], Message]:
    """The stored messages the repeated client_ids name (usually none)."""
    if not repeats:
        return {}
    wanted = or_(*(and_(Message.session_id == r.session_id, Message.client_id == r.client_id) for r in repeats))
    return {(m.session_id, m.client_id): m for m in await db.scalars(select(Message).where(wanted))}


async def _bump_sessions(
    db: AsyncSession, live: dict[uuid.UUID, ChatSession], created: Sequence[NewUserMessage]
) -> None:
    """One UPDATE statement (executemany) for every session of the batch: count its new messages, stamp the
    last one's time, title an untitled session from its first message. The rows are locked by this
    transaction, so the values the ORM objects get here are the values stored."""
    counts: dict[uuid.UUID, int] = {}
    last: dict[uuid.UUID, datetime] = {}
    titles: dict[uuid.UUID, str | None] = {}
    for row in created:
        counts[row.session_id] = counts.get(row.session_id, 0) + 1
        last[row.session_id] = max(row.created_at, last.get(row.session_id, row.created_at))
        if titles.get(row.session_id) is None:
            titles[row.session_id] = title_from(row.content) if row.content.strip() else None
    table = cast(Table, ChatSession.__table__)
    now = utcnow()
    params = [{"sid": sid, "n": n, "at": last[sid], "new_title": titles[sid], "now": now} for sid, n in counts.items()]
    await db.execute(
        update(table)
        .where(table.c.id == bindparam("sid"))
        .values(
            message_count=table.c.message_count + bindparam("n"),
            last_message_at=bindparam("at", type_=UTCDateTime),
            title=func.coalesce(table.c.title, bindparam("new_title", type_=String)),
            updated_at=bindparam("now", type_=UTCDateTime),
        ),
        params,
    )
    for sid, n in counts.items():
        session = live[sid]
        set_committed_value(session, "message_count", session.message_count + n)
        set_committed_value(session, "last_message_at", last[sid])
        set_committed_value(session, "title", session.title if session.title is not None else titles[sid])
        set_committed_value(session, "updated_at", now)
    mark_stale(db, *(key for sid in counts for key in (session_key(sid), messages_key(sid))))


def _message_of(row: NewUserMessage, username: str | None) -> Message:
    """The Message as inserted (no read back: every column is known), with its author's name."""
    return Message(
        id=row.id,
        session_id=row.session_id,
        user_id=row.user_id,
        message_type=MessageType.user,
        content_type=row.content_type,
        content=row.content,
        audio_url=row.audio_url,
        rag_context=None,
        processing_time=None,
        tokens_used=None,
        status=MessageStatus.complete,
        reply_to_id=None,
        client_id=row.client_id,
        created_at=row.created_at,
        edited_at=None,
        is_deleted=False,
        author=User(id=row.user_id, username=username) if username is not None else None,
    )


async def get_with_session(db: AsyncSession, message_id: uuid.UUID) -> tuple[Message, ChatSession]:
    """A message with its session, or `NotFound` (callers authorize with turns/access.py: a stranger to the
    session is told the same `NotFound`)."""
    row = (
        await db.execute(
            select(Message, ChatSession)
            .join(ChatSession, ChatSession.id == Message.session_id)
            .where(Message.id == message_id)
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
    """Change the text of the caller's own, live user message and stamp `edited_at`.

    One conditional UPDATE (`… WHERE id = :id AND is_deleted = false RETURNING …`) decides a race with a
    delete: the edit lands before the delete, or it is refused `message_deleted`; never a deleted row edited.
    """
    if session.is_archived:
        raise Conflict("the session is archived and read-only", code="session_archived")
    if message.message_type is not MessageType.user or message.user_id != user_id:
        raise Forbidden("only your own messages can be edited", code="not_editable")
    edited = await _update_live(db, message.id, content=content, edited_at=utcnow())
    if edited is None:
        raise Conflict("the message was deleted", code="message_deleted")
    return edited


async def delete_message(db: AsyncSession, message: Message, session: ChatSession) -> Message | None:
    """Soft-delete a message of the caller's session in one conditional UPDATE: the deleted row, or None
    when it was deleted already (deleting twice is harmless, and only one of two racing deletes wins)."""
    if session.is_archived:
        raise Conflict("the session is archived and read-only", code="session_archived")
    return await _update_live(db, message.id, is_deleted=True)


async def lock_live(db: AsyncSession, message_id: uuid.UUID) -> Message | None:
    """The message as stored now if it is not deleted, locked until the unit of work ends; None once deleted.

    What the caller announces while holding it cannot be overtaken by a change to the message: a delete
    waits for the lock, and after a delete nothing is returned. A no-op write rather than `FOR UPDATE`,
    which SQLite lacks: it takes the row lock on PostgreSQL and the write lock on SQLite.
    """
    return await _update_live(db, message_id, is_deleted=False)


async def _update_live(db: AsyncSession, message_id: uuid.UUID, **values: object) -> Message | None:
    """`values` written to the message if it is not deleted, atomically; the row as written, or None."""
    message = await db.scalar(
        update(Message)
        .where(Message.id == message_id, Message.is_deleted.is_(False))
        .values(**values)
        .returning(Message)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if message is not None:
        mark_stale(db, *stale_keys(message))
        unloaded = [name for name in ("attachment", "author") if name in inspect(message).unloaded]
        if unloaded:  # RETURNING brings the row, not its joined attachment and author
            await db.refresh(message, unloaded)
    return message
