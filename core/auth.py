"""Passwords (argon2, off the event loop) and access tokens (HS256 JWT)."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, malformed, tampered with, expired or revoked; `code` is stable for clients."""

    def __init__(self, message: str, *, expired: bool = False, code: str = "unauthorized") -> None:
        super().__init__(message)
        self.expired = expired
        self.code = code


@dataclass(frozen=True)
class TokenClaims:
    """What a valid access token says."""

    user_id: uuid.UUID
    jti: str
    expires_at: datetime
    #: the login the token belongs to (see store/logins.py): revoking it ends the token
    login_id: uuid.UUID


class Auth:
    """Hashes and checks passwords and issues and checks tokens for one secret."""

    def __init__(
        self, secret: str, ttl_seconds: int, executor: Executor | None = None, hasher: PasswordHasher | None = None
    ) -> None:
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self._executor = executor
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash = self._hasher.hash("timing-equaliser")

    async def hash_password(self, password: str) -> str:
        """An argon2id hash of `password`, computed in the executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._hasher.hash, password)

    async def verify_password(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no hash it still spends the same time, then says no."""
        loop = asyncio.get_running_loop()
        target = password_hash or self._dummy_hash

        def verify() -> bool:
            try:
                return self._hasher.verify(target, password)
            except (VerificationError, InvalidHashError):
                return False

        ok = await loop.run_in_executor(self._executor, verify)
        return ok and password_hash is not None

    def issue_token(
        self, user_id: uuid.UUID, login_id: uuid.UUID, *, now: datetime | None = None, until: datetime | None = None
    ) -> str:
        """A signed access token of one login; it expires after the TTL, and never after `until`."""
        now = now or datetime.now(UTC)
        expires = now + timedelta(seconds=self.ttl_seconds)
        if until is not None:
            expires = min(expires, until)
        claims = {
            "sub": str(user_id),
            "sid": str(login_id),
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode_token(self, token: str) -> TokenClaims:
        """Check signature, algorithm and expiry; raise `InvalidToken` otherwise."""
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["sub", "sid", "exp", "iat", "jti"]}
            )
            return TokenClaims(
                user_id=uuid.UUID(str(claims["sub"])),
                jti=str(claims["jti"]),
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
                login_id=uuid.UUID(str(claims["sid"])),
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("the token has expired", expired=True) from exc
        except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
            raise InvalidToken("the token is invalid") from exc


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header value, if any."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
