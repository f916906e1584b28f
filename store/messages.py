"""Messages: immutable history with edits (`edited_at`) and soft deletes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import String, Table, Uuid, and_, bindparam, column, func, inspect, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from store.cache import mark_stale, messages_key, session_key, stale_keys
from store.crypto import EncryptedText
from store.errors import Conflict, Forbidden, NotFound, StoreError
from store.models import (
    ChatSession,
    ContentType,
    Message,
    MessageStatus,
    MessageType,
    User,
    as_loaded,
    column_keys,
    named_author,
)
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
    #: the assistant message that will answer it, stored (`streaming`, empty) with it when it is stored
    answer_id: uuid.UUID | None = None
    answer_at: datetime | None = None


async def post_user_messages(db: AsyncSession, rows: Sequence[NewUserMessage]) -> list[Posted | StoreError]:
    """`store_user_messages` in the caller's async unit of work (nothing commits here)."""
    return await db.run_sync(store_user_messages, rows)


def store_user_messages(db: Session, rows: Sequence[NewUserMessage]) -> list[Posted | StoreError]:
    """Store a batch of user messages in the caller's transaction (nothing commits here), each with the
    `streaming` row of its answer when it has an `answer_id` (not for a repeated client_id). Per row: the
    outcome, or the refusal (`not_found`, `session_archived`) of a row whose session is gone or archived.

    On PostgreSQL one statement whatever the batch size (`_PG_BATCH`: lock the sessions, insert skipping
    repeated client_ids, add their answers' rows, count them in their sessions, return the sessions as they
    are now); on SQLite up to five (lock, one multi-row insert, the answers' rows, one executemany update).
    Repeated client_ids' first copies take one read more.

    Synchronous, a unit for `store.db.Units` (the group commit's path): on PostgreSQL under `run_sync`, on an
    SQLite file in `SQLiteThreads`' writing thread, one hop from the event loop for the whole batch instead of
    four per statement through aiosqlite. `post_user_messages` runs it in an async unit of work of the caller's."""
    if db.get_bind().dialect.name == "postgresql":
        live, inserted = _pg_batch(db, rows)
    else:
        live, inserted = _sqlite_batch(db, rows)
    outcomes: dict[uuid.UUID, Posted | StoreError] = {}
    names = {row.user_id: row.username for row in rows if row.username is not None}
    unnamed = {row.user_id for row in rows if row.id in inserted} - names.keys()
    if unnamed:  # callers that did not know the author's name (none of the app's entry points)
        known = db.execute(select(User.id, User.username).where(User.id.in_(unnamed)))
        names.update((found[0], found[1]) for found in known)
    repeats = []
    for row in rows:
        session = live.get(row.session_id)
        if session is None:
            outcomes[row.id] = NotFound("no such session")
        elif session.is_archived:
            outcomes[row.id] = Conflict("the session is archived and read-only", code="session_archived")
        elif row.id in inserted:
            outcomes[row.id] = Posted(message_as_inserted(row, names.get(row.user_id)), True, session)
        else:
            repeats.append(row)
    firsts = _first_copies(db, repeats)
    for row in repeats:
        first = firsts.get((row.session_id, row.client_id))
        session = live[row.session_id]
        outcomes[row.id] = Posted(first, False, session) if first is not None else NotFound("no such message")
    return [outcomes[row.id] for row in rows]


def _sqlite_batch(db: Session, rows: Sequence[NewUserMessage]) -> tuple[dict[uuid.UUID, ChatSession], set[uuid.UUID]]:
    """Read the batch's sessions (in `SQLiteThreads`' writing unit, under the write lock its `BEGIN IMMEDIATE`
    took), insert the rows of live ones skipping repeats, count what was inserted: the sessions as they are
    now (built as loaded rows, as on PostgreSQL), and the ids inserted."""
    session_ids = {row.session_id for row in rows}
    locked = db.connection().execute(select(_SESSIONS).where(_SESSIONS.c.id.in_(session_ids)))
    live = {session.id: session for session in map(_session_as_read, locked.mappings())}
    accepted = [row for row in rows if row.session_id in live and not live[row.session_id].is_archived]
    if not accepted:
        return live, set()
    inserted = _insert_skipping_repeats(db, accepted)
    created = [row for row in accepted if row.id in inserted]
    if created:
        _insert_answers(db, created)
        _bump_sessions(db, live, created)
    return live, inserted


_SESSIONS = cast(Table, ChatSession.__table__)
_BUMPED = ("message_count", "last_message_at", "title", "updated_at")
#: PostgreSQL: the whole batch in one statement from arrays, one text whatever the batch size (prepared once
#: per pooled connection). `locked` takes the sessions' row locks (in id order) before anything is written
#: and reads them as committed now; rows of live sessions are inserted, repeated client_ids skipped, and the
#: `streaming` rows of the answers of those inserted; the sessions count the user messages inserted (their first
#: titled row titles an untitled one); the sessions come back as they are after that, each with the ids
#: inserted into it.
_PG_BATCH = (
    text(
        f"""
    WITH r AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:session_ids AS uuid[]), CAST(:user_ids AS uuid[]),
            CAST(:content_types AS text[]), CAST(:contents AS text[]), CAST(:audio_urls AS text[]),
            CAST(:client_ids AS text[]), CAST(:created_ats AS timestamptz[]), CAST(:titles AS text[]),
            CAST(:answer_ids AS uuid[]), CAST(:answer_ats AS timestamptz[])
        ) WITH ORDINALITY AS r(id, session_id, user_id, content_type, content, audio_url, client_id, created_at,
                               title, answer_id, answer_at, ord)
    ),
    locked AS (
        SELECT * FROM chat_sessions WHERE id IN (SELECT session_id FROM r) ORDER BY id FOR UPDATE
    ),
    ins AS (
        INSERT INTO messages (id, session_id, user_id, message_type, content_type, content, audio_url, status,
                              client_id, created_at, is_deleted)
        SELECT r.id, r.session_id, r.user_id, 'user'::message_type, r.content_type::content_type, r.content,
               r.audio_url, 'complete'::message_status, r.client_id, r.created_at, false
        FROM r JOIN locked ON locked.id = r.session_id AND NOT locked.is_archived
        ORDER BY r.ord
        ON CONFLICT (session_id, client_id) DO NOTHING
        RETURNING id
    ),
    answers AS (
        INSERT INTO messages (id, session_id, message_type, content_type, content, status, reply_to_id,
                              created_at, is_deleted)
        SELECT r.answer_id, r.session_id, 'assistant'::message_type, 'text'::content_type, :no_text,
               'streaming'::message_status, r.id, r.answer_at, false
        FROM ins JOIN r ON r.id = ins.id
        WHERE r.answer_id IS NOT NULL
    ),
    added AS (
        SELECT r.session_id, count(*) AS n, max(r.created_at) AS at, array_agg(r.id) AS ids,
               (array_agg(r.title ORDER BY r.ord) FILTER (WHERE r.title IS NOT NULL))[1] AS title
        FROM ins JOIN r ON r.id = ins.id
        GROUP BY r.session_id
    ),
    bumped AS (
        UPDATE chat_sessions AS s
        SET message_count = s.message_count + added.n, last_message_at = added.at,
            title = coalesce(s.title, added.title), updated_at = :now
        FROM added WHERE s.id = added.session_id
        RETURNING s.id, {", ".join(f"s.{name}" for name in _BUMPED)}
    )
    SELECT {
            ", ".join(
                f"coalesce(bumped.{c.name}, locked.{c.name}) AS {c.name}" if c.name in _BUMPED else f"locked.{c.name}"
                for c in _SESSIONS.c
            )
        }, added.ids AS inserted
    FROM locked LEFT JOIN bumped ON bumped.id = locked.id LEFT JOIN added ON added.session_id = locked.id
    """
    )
    .bindparams(
        bindparam("contents", type_=postgresql.ARRAY(EncryptedText())),
        bindparam("created_ats", type_=postgresql.ARRAY(UTCDateTime())),
        bindparam("answer_ats", type_=postgresql.ARRAY(UTCDateTime())),
        bindparam("no_text", type_=EncryptedText()),
        bindparam("now", type_=UTCDateTime()),
    )
    .columns(*_SESSIONS.c, column("inserted", postgresql.ARRAY(Uuid())))
)
#: column name -> ChatSession attribute (`metadata` is `meta`)
_SESSION_KEYS = column_keys(ChatSession)


def _session_as_read(found: RowMapping) -> ChatSession:
    """A session row read with Core (its columns by name), built as a loaded row."""
    return as_loaded(ChatSession, {key: found[name] for name, key in _SESSION_KEYS.items()})


def _pg_batch(db: Session, rows: Sequence[NewUserMessage]) -> tuple[dict[uuid.UUID, ChatSession], set[uuid.UUID]]:
    """`_PG_BATCH`: the batch's sessions as they are now (built as loaded rows), and the ids inserted."""
    titles: list[str | None] = [title_from(row.content) if row.content.strip() else None for row in rows]
    arrays = {
        "ids": [row.id for row in rows],
        "session_ids": [row.session_id for row in rows],
        "user_ids": [row.user_id for row in rows],
        "content_types": [row.content_type.value for row in rows],
        "contents": [row.content for row in rows],
        "audio_urls": [row.audio_url for row in rows],
        "client_ids": [row.client_id for row in rows],
        "created_ats": [row.created_at for row in rows],
        "titles": titles,
        "answer_ids": [row.answer_id for row in rows],
        "answer_ats": [row.answer_at for row in rows],
        "no_text": "",
        "now": utcnow(),
    }
    live: dict[uuid.UUID, ChatSession] = {}
    inserted: set[uuid.UUID] = set()
    connection = db.connection()  # Core statements: past the ORM's execute, which costs more than they do
    for found in connection.execute(_PG_BATCH, arrays).mappings():
        session = _session_as_read(found)
        live[session.id] = session
        if found["inserted"]:
            inserted.update(found["inserted"])
            mark_stale(db, session_key(session.id), messages_key(session.id))
    return live, inserted


def _insert_skipping_repeats(db: Session, rows: Sequence[NewUserMessage]) -> set[uuid.UUID]:
    """INSERT … ON CONFLICT (session_id, client_id) DO NOTHING RETURNING id, as one multi-row statement
    (SQLAlchemy's "insertmanyvalues"); the ids stored."""
    table = cast(Table, Message.__table__)
    statement = (
        sqlite.insert(table).on_conflict_do_nothing(index_elements=["session_id", "client_id"]).returning(table.c.id)
    )
    values = [_inserted(row) for row in rows]
    return set(db.connection().execute(statement, values).scalars())


def _insert_answers(db: Session, created: Sequence[NewUserMessage]) -> None:
    """SQLite: the `streaming` rows of the answers of the user messages just inserted, in one statement."""
    answers = [row for row in created if row.answer_id is not None]
    if not answers:
        return
    values = [
        {
            "id": row.answer_id,
            "session_id": row.session_id,
            "message_type": MessageType.assistant,
            "content_type": ContentType.text,
            "content": "",
            "status": MessageStatus.streaming,
            "reply_to_id": row.id,
            "created_at": row.answer_at,
            "is_deleted": False,
        }
        for row in answers
    ]
    db.connection().execute(sqlite.insert(cast(Table, Message.__table__)), values)


def _first_copies(db: Session, repeats: Sequence[NewUserMessage]) -> dict[tuple[uuid.UUID, str | None], Message]:
    """The stored messages the repeated client_ids name (usually none)."""
    if not repeats:
        return {}
    wanted = or_(*(and_(Message.session_id == r.session_id, Message.client_id == r.client_id) for r in repeats))
    return {(m.session_id, m.client_id): m for m in db.scalars(select(Message).where(wanted))}


_BUMP = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("sid"))
    .values(
        message_count=_SESSIONS.c.message_count + bindparam("n"),
        last_message_at=bindparam("at", type_=UTCDateTime),
        title=func.coalesce(_SESSIONS.c.title, bindparam("new_title", type_=String)),
        updated_at=bindparam("now", type_=UTCDateTime),
    )
)


def _bump_sessions(db: Session, live: dict[uuid.UUID, ChatSession], created: Sequence[NewUserMessage]) -> None:
    """SQLite: one UPDATE statement (executemany) for every session of the batch: count its new messages,
    stamp the last one's time, title an untitled session from its first message. The rows are locked by this
    transaction, so the values the ORM objects get here are the values stored."""
    counts: dict[uuid.UUID, int] = {}
    last: dict[uuid.UUID, datetime] = {}
    titles: dict[uuid.UUID, str | None] = {}
    for row in created:
        counts[row.session_id] = counts.get(row.session_id, 0) + 1
        last[row.session_id] = max(row.created_at, last.get(row.session_id, row.created_at))
        if titles.get(row.session_id) is None:
            titles[row.session_id] = title_from(row.content) if row.content.strip() else None
    now = utcnow()
    params = [{"sid": sid, "n": n, "at": last[sid], "new_title": titles[sid], "now": now} for sid, n in counts.items()]
    db.connection().execute(_BUMP, params)
    for sid, n in counts.items():
        session = live[sid]
        set_committed_value(session, "message_count", session.message_count + n)
        set_committed_value(session, "last_message_at", last[sid])
        set_committed_value(session, "title", session.title if session.title is not None else titles[sid])
        set_committed_value(session, "updated_at", now)
    mark_stale(db, *(key for sid in counts for key in (session_key(sid), messages_key(sid))))


def _inserted(row: NewUserMessage) -> dict[str, Any]:
    """The columns a user message is inserted with (the rest start NULL)."""
    return {
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


def message_as_inserted(row: NewUserMessage, username: str | None) -> Message:
    """The Message as inserted (no read back: every column is known) with its author's name, built as a loaded
    row (`as_loaded`): a tenth of the cost of `Message(...)`, which fires an attribute event per column."""
    unset = dict.fromkeys(("rag_context", "processing_time", "tokens_used", "reply_to_id", "edited_at"))
    return as_loaded(Message, _inserted(row) | unset | {"author": named_author(row.user_id, username)})


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
