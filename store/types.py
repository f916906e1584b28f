"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

#: JSONB on PostgreSQL, JSON elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes, also on SQLite (which stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def unstorable_text(data: Any) -> list[str | int] | None:
    """Where `data` (parsed JSON) holds a string no database keeps: a NUL character (PostgreSQL refuses it in
    text and JSON) or an unpaired surrogate (not UTF-8 at all); None when every string is fine.

    Iterative, so JSON nested as deep as the parser allows cannot exhaust the stack here.
    """
    stack: list[tuple[list[str | int], Any]] = [([], data)]
    while stack:
        loc, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or (not item.isascii() and _has_surrogate(item)):
                return loc
        elif isinstance(item, dict):
            for key, value in item.items():
                stack.append(([*loc, key], key))
                stack.append(([*loc, key], value))
        elif isinstance(item, list):
            stack.extend(([*loc, index], value) for index, value in enumerate(item))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
