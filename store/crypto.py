"""Message content and RAG context encrypted at rest, transparently in the column types.

Rows written before encryption was turned on stay readable as they are. The cipher (core/cipher.py)
hangs off the engine's dialect (see `store.db.create_engine`): column types only see the dialect, and
this keeps the key out of module state.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from core.cipher import PREFIX, ContentCipher


def attach(dialect: Dialect, cipher: ContentCipher | None) -> None:
    """Make the engine with this dialect encrypt (and decrypt) through `cipher`."""
    dialect.parley_cipher = cipher  # type: ignore[attr-defined]


def _cipher(dialect: Dialect) -> ContentCipher | None:
    return getattr(dialect, "parley_cipher", None)


def _decrypt(value: str, dialect: Dialect) -> str:
    cipher = _cipher(dialect)
    if cipher is None:  # no key here (tools, raw reads): the stored form, as it is
        return value
    return cipher.decrypt(value)


class EncryptedText(TypeDecorator[str]):
    """Text, encrypted when the engine has a cipher."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        cipher = _cipher(dialect)
        return value if value is None or cipher is None else cipher.encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if isinstance(value, str) and value.startswith(PREFIX):
            return _decrypt(value, dialect)
        return value


class EncryptedJSON(TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL); with a cipher, stored as one encrypted JSON string."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        cipher = _cipher(dialect)
        return value if value is None or cipher is None else cipher.encrypt(json.dumps(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and value.startswith(PREFIX):
            plain = _decrypt(value, dialect)
            return plain if plain is value else json.loads(plain)
        return value
