"""The token lifecycle: a token is good while its login is live, and a revoked login reaches every node.

A token names its login (`sid` claim, store/logins.py). Checking a token reads the login through the
cache (`login:{id}`, invalidated when the row commits), so logout and password change end tokens on
every node at once. Open sockets of a revoked login are told `error {code: "auth_revoked"}` and
disconnected, on every node: Redis pub/sub when REDIS_URL is set, this process otherwise.

Membership changes of shared sessions travel the same way: a removed member's sockets in that session are
told `error {code: "removed"}` and disconnected; a member whose role changed keeps their sockets, which
take the new role at once (a viewer's write events are refused).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import socketio
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from core import pubsub
from core.auth import Auth, InvalidToken, TokenClaims
from store import logins
from store.cache import LOGIN_TTL, Cache, login_key
from turns.broadcast import Broadcaster, namespace_of
from turns.wire import ErrorEvent

log = logging.getLogger(__name__)
REVOKE_CHANNEL = "parley:revoke"
REVOKED = ErrorEvent(code="auth_revoked", message="this sign-in was ended (logout or password change): log in again")
REMOVED = ErrorEvent(code="removed", message="you were removed from this session")
#: a membership change on the revocation channel: `member <session_id> <user_id> <role, or - when removed>`
MEMBER_PREFIX = "member "


class LoginState(BaseModel):
    """What a token check needs of a login (cached)."""

    user_id: uuid.UUID
    expires_at: datetime
    revoked: bool


async def login_state(db: AsyncSession, cache: Cache, login_id: uuid.UUID) -> LoginState | None:
    """The login from the cache, or from the database into the cache; None if there is no such login."""
    key = login_key(login_id)
    cached = await cache.get(key, LoginState)
    if cached is not None:
        return cached
    row = await logins.get(db, login_id)
    if row is None:
        return None
    state = LoginState(user_id=row.user_id, expires_at=row.expires_at, revoked=row.revoked_at is not None)
    await cache.put(key, state, LOGIN_TTL)
    return state


async def verify(auth: Auth, db: AsyncSession, cache: Cache, token: str) -> TokenClaims:
    """The claims of a valid token of a live login; `InvalidToken` otherwise."""
    claims = auth.decode_token(token)
    state = await login_state(db, cache, claims.login_id)
    if state is None or state.user_id != claims.user_id:
        raise InvalidToken("the token's sign-in no longer exists: log in again")
    if state.revoked:
        raise InvalidToken(REVOKED.message, code=REVOKED.code)
    if state.expires_at <= datetime.now(UTC):
        raise InvalidToken("the sign-in reached its maximum lifetime: log in again", expired=True)
    return claims


class Revocations:
    """Finds the open sockets of revoked logins, wherever they are connected, and ends them."""

    def __init__(self, sio: socketio.AsyncServer, broadcaster: Broadcaster, redis: Redis | None = None) -> None:
        self._sio = sio
        self._broadcaster = broadcaster
        self._redis = redis
        self._sockets: defaultdict[uuid.UUID, set[tuple[uuid.UUID, str]]] = defaultdict(set)
        self._members: defaultdict[tuple[uuid.UUID, uuid.UUID], set[str]] = defaultdict(set)

    def track(self, login_id: uuid.UUID, session_id: uuid.UUID, sid: str, user_id: uuid.UUID) -> None:
        """Remember that socket `sid` of session `session_id` was opened by `user_id` with a token of `login_id`."""
        self._sockets[login_id].add((session_id, sid))
        self._members[(session_id, user_id)].add(sid)

    def forget(self, login_id: uuid.UUID, session_id: uuid.UUID, sid: str, user_id: uuid.UUID) -> None:
        sockets = self._sockets.get(login_id)
        if sockets is not None:
            sockets.discard((session_id, sid))
            if not sockets:
                del self._sockets[login_id]
        mine = self._members.get((session_id, user_id))
        if mine is not None:
            mine.discard(sid)
            if not mine:
                del self._members[(session_id, user_id)]

    async def membership_changed(self, session_id: uuid.UUID, user_id: uuid.UUID, role: str | None) -> None:
        """A member was removed (`role` None) or given another role: apply it to their sockets here, and ask
        every other node to do the same."""
        await self._apply_membership(session_id, user_id, role)
        if self._redis is not None:
            try:
                await self._redis.publish(REVOKE_CHANNEL, f"{MEMBER_PREFIX}{session_id} {user_id} {role or '-'}")
            except RedisError as exc:  # their events are refused anyway (the intake reads the roles afresh)
                log.warning("membership: Redis unavailable (%s); applied on this node only", exc)

    async def _apply_membership(self, session_id: uuid.UUID, user_id: uuid.UUID, role: str | None) -> None:
        namespace = namespace_of(session_id)
        for sid in list(self._members.get((session_id, user_id), ())):
            if role is None:
                await self._broadcaster.emit(session_id, REMOVED, to=sid)
                await self._sio.disconnect(sid, namespace=namespace)
            else:
                async with self._sio.session(sid, namespace=namespace) as state:
                    state["role"] = role

    async def revoke(self, login_ids: list[uuid.UUID]) -> None:
        """End the sockets of `login_ids` here, and ask every other node to do the same."""
        await self._end_local(login_ids)
        if self._redis is not None and login_ids:
            try:
                await self._redis.publish(REVOKE_CHANNEL, ",".join(str(login_id) for login_id in login_ids))
            except RedisError as exc:  # the tokens are refused anyway; other nodes' sockets end at expiry
                log.warning("revocations: Redis unavailable (%s); sockets ended on this node only", exc)

    async def _end_local(self, login_ids: list[uuid.UUID]) -> None:
        for login_id in login_ids:
            for session_id, sid in list(self._sockets.pop(login_id, ())):
                await self._broadcaster.emit(session_id, REVOKED, to=sid)
                await self._sio.disconnect(sid, namespace=namespace_of(session_id))

    async def listen(self) -> None:
        """Serve revocations published by other nodes until cancelled."""
        if self._redis is not None:
            await pubsub.listen(self._redis, REVOKE_CHANNEL, self._revoked_elsewhere, "revocations")

    async def _revoked_elsewhere(self, message: str) -> None:
        if message.startswith(MEMBER_PREFIX):
            session_id, user_id, role = message.removeprefix(MEMBER_PREFIX).split(" ")
            await self._apply_membership(uuid.UUID(session_id), uuid.UUID(user_id), None if role == "-" else role)
            return
        await self._end_local([uuid.UUID(part) for part in message.split(",") if part])
