"""The cache of API shapes: key scheme (keys), where bytes live (backends), the typed facade (cache) and the
session class that invalidates on commit (session)."""

from store.cache.backends import Backend, MemoryBackend, RedisBackend
from store.cache.cache import Cache, CacheCounter
from store.cache.keys import (
    LOGIN_TTL,
    MESSAGES_TTL,
    RAG_CONTEXT_TTL,
    RECENT_MESSAGES,
    SESSION_TTL,
    USER_TTL,
    access_key,
    login_key,
    messages_key,
    rag_generation_key,
    room_generation_key,
    session_key,
    stale_keys,
    user_key,
)
from store.cache.session import CachingSession, CachingSyncSession, mark_stale

__all__ = [
    "LOGIN_TTL",
    "MESSAGES_TTL",
    "RAG_CONTEXT_TTL",
    "RECENT_MESSAGES",
    "SESSION_TTL",
    "USER_TTL",
    "Backend",
    "Cache",
    "CacheCounter",
    "CachingSession",
    "CachingSyncSession",
    "MemoryBackend",
    "RedisBackend",
    "access_key",
    "login_key",
    "mark_stale",
    "messages_key",
    "rag_generation_key",
    "room_generation_key",
    "session_key",
    "stale_keys",
    "user_key",
]
