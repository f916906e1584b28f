"""The content cipher (AES-256-GCM) and its keys: what settings validate and the store's column types use.

Stored form: `enc:v1:<key id>:<base64(nonce | ciphertext | tag)>`. The key id (first 8 hex digits of
the key's SHA-256) picks the key on read, so a new CONTENT_ENCRYPTION_KEY can be rolled out with the
old one in CONTENT_ENCRYPTION_OLD_KEYS: old rows stay readable, new writes use the new key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

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
