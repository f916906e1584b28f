"""The key scheme of the cache: which keys exist, how long they live, and which keys a changed row makes stale.

Keys and lifetimes follow the original design: `session:{id}` 1 h, `user:{id}` 30 min,
`messages:{session_id}` (the last 20) 1 h, `rag_context:{hash}` 24 h.
"""

from __future__ import annotations

import uuid

from store.models import ChatSession, Document, Login, Message, RagContext, SessionMember, User

SESSION_TTL = 3600
USER_TTL = 1800
MESSAGES_TTL = 3600
RAG_CONTEXT_TTL = 24 * 3600
#: short: a revocation whose invalidation failed still takes effect this soon
LOGIN_TTL = 300
#: how many of a session's newest messages `messages:{id}` holds
RECENT_MESSAGES = 20


def session_key(session_id: uuid.UUID) -> str:
    return f"session:{session_id}"


def access_key(session_id: uuid.UUID) -> str:
    """Who may use a session: its owner (who never changes) and its members' roles; invalidated when a
    membership row changes, not when a message is posted (unlike `session:{id}`)."""
    return f"session_access:{session_id}"


def user_key(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def login_key(login_id: uuid.UUID) -> str:
    return f"login:{login_id}"


def messages_key(session_id: uuid.UUID) -> str:
    return f"messages:{session_id}"


def rag_generation_key(user_id: uuid.UUID) -> str:
    """A random token that changes whenever the user's documents change; part of every rag_context hash."""
    return f"rag_generation:{user_id}"


def room_generation_key(session_id: uuid.UUID) -> str:
    """Like `rag_generation_key`, for the documents attached to one session by any of its members."""
    return f"rag_room_generation:{session_id}"


def stale_keys(row: object) -> set[str]:
    """The cache keys whose value may change when `row` is inserted, updated or deleted."""
    if isinstance(row, User):
        return {user_key(row.id)}
    if isinstance(row, ChatSession):
        return {session_key(row.id), messages_key(row.id)}
    if isinstance(row, Message):
        return {messages_key(row.session_id), session_key(row.session_id)}
    if isinstance(row, RagContext):
        return {messages_key(row.session_id)}
    if isinstance(row, Document):
        keys = {rag_generation_key(row.user_id)}
        return keys | {room_generation_key(row.session_id)} if row.session_id is not None else keys
    if isinstance(row, SessionMember):
        return {access_key(row.session_id)}
    if isinstance(row, Login):
        return {login_key(row.id)}
    return set()
