"""What route handlers need from a request: a database session and the signed-in user."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from server import keys
from server.auth import InvalidToken, bearer_token
from server.errors import ApiError
from store import users
from store.errors import NotFound
from store.models import User


def db_session(request: web.Request) -> AsyncSession:
    """A new unit of work; use it as `async with db_session(request) as db:`."""
    return request.app[keys.SESSIONMAKER]()


async def authenticate(request: web.Request, db: AsyncSession, *, query_token: bool = False) -> User:
    """The user behind the request's bearer token, or a 401 `unauthorized`.

    With `query_token`, a `?token=` parameter also works: `<audio src>` cannot send headers.
    """
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and query_token:
        token = request.query.get("token") or None
    if token is None:
        raise ApiError(401, "unauthorized", "sign in first: send Authorization: Bearer <token>")
    try:
        claims = request.app[keys.AUTH].decode_token(token)
        user = await users.get_user(db, claims.user_id)
    except InvalidToken as exc:
        raise ApiError(401, "unauthorized", str(exc)) from exc
    except NotFound as exc:
        raise ApiError(401, "unauthorized", "the account behind this token no longer exists") from exc
    await users.touch_active(db, user)
    await db.commit()  # end the read transaction: no pooled connection is held while the body arrives
    return user
