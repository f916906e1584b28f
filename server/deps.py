"""What route handlers need from a request: a database session, the signed-in user, the client address."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from core import logs
from core.auth import InvalidToken, TokenClaims, bearer_token
from handlers.tokens import verify
from server import keys
from server.errors import ApiError
from store import audit as store_audit
from store import messages, users
from store.cache import USER_TTL, user_key
from store.errors import NotFound
from store.models import ChatSession, Message
from store.schemas import SessionOut, UserOut
from turns.access import Need, Role


def db_session(request: web.Request) -> AsyncSession:
    """A new unit of work; use it as `async with db_session(request) as db:`."""
    return request.app[keys.SESSIONMAKER]()


def client_ip(request: web.Request) -> str:
    """The caller's address: the first X-Forwarded-For hop when TRUST_FORWARDED_FOR is set, else the peer."""
    if request.app[keys.SETTINGS].trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.remote or "unknown"


async def load_user(request: web.Request, db: AsyncSession, user_id: object) -> UserOut:
    """The account from the cache (`user:{id}`, 30 min), or from the database into the cache."""
    cache = request.app[keys.CACHE]
    key = user_key(user_id)  # type: ignore[arg-type]
    cached = await cache.get(key, UserOut)
    if cached is not None:
        return cached
    user = UserOut.model_validate(await users.get_user(db, user_id))  # type: ignore[arg-type]
    await db.commit()
    await cache.put(key, user, USER_TTL)
    return user


async def authenticate(request: web.Request, db: AsyncSession, *, query_token: bool = False) -> UserOut:
    """The user behind the request's bearer token, or a 401 `unauthorized` (`auth_revoked` for an ended login).

    With `query_token`, a `?token=` parameter also works: `<audio src>` cannot send headers.
    """
    return (await authenticate_token(request, db, query_token=query_token))[0]


def request_token(request: web.Request, *, query_token: bool = False) -> str | None:
    """The bearer token of the request (or its `?token=` with `query_token`)."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and query_token:
        token = request.query.get("token") or None
    return token


async def authenticate_token(
    request: web.Request, db: AsyncSession, *, query_token: bool = False
) -> tuple[UserOut, TokenClaims]:
    """`authenticate`, with the token's claims (which login it belongs to)."""
    token = request_token(request, query_token=query_token)
    if token is None:
        raise ApiError(401, "unauthorized", "sign in first: send Authorization: Bearer <token>")
    try:
        claims = await verify(request.app[keys.AUTH], db, request.app[keys.CACHE], token)
        user = await load_user(request, db, claims.user_id)
    except InvalidToken as exc:
        raise ApiError(401, exc.code, str(exc)) from exc
    except NotFound as exc:
        raise ApiError(401, "unauthorized", "the account behind this token no longer exists") from exc
    logs.bind(user_id=user.id)
    await users.touch_active(db, user.id, user.last_active_at)
    await db.commit()  # end the read transaction: no pooled connection is held while the body arrives
    return user, claims


async def require_admin(request: web.Request, db: AsyncSession) -> UserOut:
    """The signed-in user if an admin, else 403 `forbidden`."""
    user = await authenticate(request, db)
    if not user.is_admin:
        raise ApiError(403, "forbidden", "only admins may read this")
    return user


def audit(
    request: web.Request, db: AsyncSession, action: str, *, user_id: object, outcome: str = "success", **fields: Any
) -> None:
    """Record an audit event with the caller's address and the request id; it commits with `db`."""
    store_audit.record(
        db,
        action,
        user_id=user_id,  # type: ignore[arg-type]
        outcome=outcome,
        ip=client_ip(request),
        request_id=logs.REQUEST_ID.get(),
        **fields,
    )


async def session_for(
    request: web.Request, db: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID, need: Need
) -> tuple[SessionOut, Role]:
    """The session and the user's role in it, if the role grants `need` (turns/access.py): a stranger's
    is not found (404), a member short of the role is `forbidden` (403)."""
    return await request.app[keys.ACCESS].session(session_id, user_id, need, db)


async def require(
    request: web.Request, db: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID, need: Need
) -> Role:
    """The user's role in the session if it grants `need` (404 for a stranger, 403 short of it)."""
    return await request.app[keys.ACCESS].require(session_id, user_id, need, db)


async def message_for(
    request: web.Request, db: AsyncSession, message_id: uuid.UUID, user_id: uuid.UUID, need: Need = Need.read
) -> tuple[Message, ChatSession]:
    """A message and its session, if the user's role there grants `need`; a stranger's is not found."""
    message, session = await messages.get_with_session(db, message_id)
    try:
        await require(request, db, session.id, user_id, need)
    except NotFound:
        raise NotFound("no such message") from None
    return message, session
