"""Errors the store raises; each carries a stable `code` the API layers pass on."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class StoreError(Exception):
    """Base class: `code` is stable and machine-readable, the message is for people."""

    code = "store_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(StoreError):
    """The row does not exist, or the caller may not know that it does."""

    code = "not_found"


class Conflict(StoreError):
    """The change clashes with existing state (a taken username, an archived session…)."""

    code = "conflict"


class Forbidden(StoreError):
    """The caller may see the row but not change it this way."""

    code = "forbidden"


_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError,
    PoolTimeout,  # every pooled connection busy for `pool_timeout`: overload, not a bug
    InterfaceError,
    ConnectionError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) says the database cannot be reached or is saturated right now:
    a failure to answer 503 `unavailable` for, not a bug."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain is short; never loop on a cycle
        if seen is None:
            return False
        if isinstance(seen, _UNAVAILABLE) or (isinstance(seen, DBAPIError) and seen.connection_invalidated):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
