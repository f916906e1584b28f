"""Message content and RAG context encrypted at rest (AES-256-GCM), transparently in the column types.

Stored form: `enc:v1:<key id>:<base64(nonce | ciphertext | tag)>`. The key id (first 8 hex digits of
the key's SHA-256) picks the key on read, so a new CONTENT_ENCRYPTION_KEY can be rolled out with the
old one in CONTENT_ENCRYPTION_OLD_KEYS: old rows stay readable, new writes use the new key. Rows
written before encryption was turned on stay readable as they are.

The cipher hangs off the engine's dialect (see `store.db.create_engine`): column types only see the
dialect, and this keeps the key out of module state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import JSON, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

PREFIX = "enc:v1:"


class EncryptionError(ValueError):
    """A key is malformed, or a stored value was written with a key this process does not have."""


def _key_bytes(encoded: str) -> bytes:
    try:
        key = base64.b64decode(encoded.strip() + "=" * (-len(encoded.strip()) % 4), altchars=b"-_", validate=False)
    except (binascii.Error, ValueError) as exc:
        raise EncryptionError("an encryption key must be base64") from exc
    if len(key) != 32:
        raise EncryptionError(f"an encryption key must be 32 bytes (base64 of 32 random bytes), got {len(key)}")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class ContentCipher:
    """Encrypts with the current key; decrypts with whichever known key a value names."""

    def __init__(self, current: str, old: tuple[str, ...] = ()) -> None:
        keys = [_key_bytes(k) for k in (current, *old)]
        self.current_id = key_id(keys[0])
        self._keys = {key_id(k): AESGCM(k) for k in keys}

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._keys[self.current_id].encrypt(nonce, plaintext.encode(), None)
        return f"{PREFIX}{self.current_id}:{base64.b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str) -> str:
        kid, _, payload = stored.removeprefix(PREFIX).partition(":")
        aead = self._keys.get(kid)
        if aead is None:
            raise EncryptionError(f"a value was encrypted with key {kid}, which is not configured")
        raw = base64.b64decode(payload)
        return aead.decrypt(raw[:12], raw[12:], None).decode()


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
