"""Accounts: register, log in, read and update the profile, look up other users."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.tokens import login_state
from server import keys
from server.deps import audit, authenticate, authenticate_token, client_ip, db_session, load_user
from server.endpoints import Endpoint, json_response
from server.errors import ApiError
from server.schemas import LoginIn, PasswordChangeIn, ProfileUpdate, RegisterIn, TokenOut
from server.validation import parse_body, path_uuid
from store import logins, users
from store.models import Login, User
from store.schemas import UserOut, UserPublic
from store.types import utcnow

PREFIX = "/api/v1/users"


def _start_login(request: web.Request, db: AsyncSession, user_id: uuid.UUID) -> Login:
    """A new login for `user_id` (it commits with `db`), lasting at most LOGIN_LIFETIME_SECONDS."""
    return logins.start(db, user_id, request.app[keys.SETTINGS].login_lifetime_seconds)


def _token_for(request: web.Request, user: User | UserOut, login_id: uuid.UUID, until: datetime) -> TokenOut:
    """A token of login `login_id`; it never outlives the login's absolute end `until`."""
    auth = request.app[keys.AUTH]
    now = datetime.now(UTC)
    token = auth.issue_token(user.id, login_id, now=now, until=until)
    expires_in = max(0, int((min(until, now + timedelta(seconds=auth.ttl_seconds)) - now).total_seconds()))
    return TokenOut(access_token=token, expires_in=expires_in, user=UserOut.model_validate(user))


async def register(request: web.Request) -> web.Response:
    """Create an account and sign it in."""
    body = await parse_body(request, RegisterIn)
    password_hash = await request.app[keys.AUTH].hash_password(body.password)
    async with db_session(request) as db:
        user = await users.create_user(
            db, username=body.username, password_hash=password_hash, email=body.email, full_name=body.full_name
        )
        audit(request, db, "register", user_id=user.id, target_type="user", target_id=user.id)
        login = _start_login(request, db, user.id)
        await db.commit()
    return json_response(_token_for(request, user, login.id, login.expires_at), status=201)


async def login(request: web.Request) -> web.Response:
    """Exchange username and password for an access token; unknown user and wrong password look alike.

    Failed attempts count per username and per address; when either is spent, logins answer 429
    without checking the password, so guessing gains nothing.
    """
    body = await parse_body(request, LoginIn)
    limiter, limits, ip = request.app[keys.LIMITER], request.app[keys.LIMITS], client_ip(request)
    username = body.username.lower()
    await limiter.check(limits.login_username, username)
    await limiter.check(limits.login_ip, ip)
    async with db_session(request) as db:
        user = await users.find_by_username(db, body.username)
        ok = await request.app[keys.AUTH].verify_password(user.password_hash if user else None, body.password)
        if user is None or not ok:
            audit(
                request,
                db,
                "login",
                user_id=user.id if user else None,
                outcome="failure",
                details={"username": username},
            )
            await db.commit()
            await limiter.hit(limits.login_username, username)
            await limiter.hit(limits.login_ip, ip)
            raise ApiError(401, "invalid_credentials", "wrong username or password")
        audit(request, db, "login", user_id=user.id)
        login = _start_login(request, db, user.id)
        await users.touch_active(db, user.id, user.last_active_at, utcnow())
        await db.commit()
    return json_response(_token_for(request, user, login.id, login.expires_at))


async def refresh_token(request: web.Request) -> web.Response:
    """A fresh token of the same login, for a token that has not expired and a login that has not ended.

    The login's absolute end (LOGIN_LIFETIME_SECONDS after the password was given) caps every refreshed
    token, so a stolen token cannot be renewed forever; past it, refresh answers 401 and one logs in again.
    """
    async with db_session(request) as db:
        user, claims = await authenticate_token(request, db)
        state = await login_state(db, request.app[keys.CACHE], claims.login_id)
        if state is None:  # ended between the check and here (an erase)
            raise ApiError(401, "unauthorized", "the token's sign-in no longer exists: log in again")
        audit(request, db, "token_refresh", user_id=user.id)
        await db.commit()
    return json_response(_token_for(request, user, claims.login_id, state.expires_at))


async def logout(request: web.Request) -> web.Response:
    """End this token's login (and every token refreshed from it); its open sockets are disconnected."""
    async with db_session(request) as db:
        user, claims = await authenticate_token(request, db)
        await logins.revoke(db, claims.login_id)
        audit(request, db, "logout", user_id=user.id)
        await db.commit()
    await request.app[keys.REVOCATIONS].revoke([claims.login_id])
    return web.Response(status=204)


async def change_password(request: web.Request) -> web.Response:
    """Set a new password (the old one is required); every other login ends, the caller gets a new token."""
    auth = request.app[keys.AUTH]
    async with db_session(request) as db:
        current = await authenticate(request, db)
        body = await parse_body(request, PasswordChangeIn)
        user = await users.get_user(db, current.id)
        limiter, limit = request.app[keys.LIMITER], request.app[keys.LIMITS].login_username
        await limiter.check(limit, user.username_key)  # guesses here count as failed logins
        if not await auth.verify_password(user.password_hash, body.old_password):
            audit(request, db, "password_change", user_id=user.id, outcome="failure")
            await db.commit()
            await limiter.hit(limit, user.username_key)
            raise ApiError(403, "invalid_credentials", "the old password is wrong")
        user.password_hash = await auth.hash_password(body.new_password)
        ended = await logins.revoke_all(db, user.id)
        login = _start_login(request, db, user.id)
        audit(request, db, "password_change", user_id=user.id)
        await db.commit()
    await request.app[keys.REVOCATIONS].revoke(ended)
    return json_response(_token_for(request, user, login.id, login.expires_at))


async def get_me(request: web.Request) -> web.Response:
    """The caller's own account."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
    return json_response(user)


async def update_me(request: web.Request) -> web.Response:
    """Change full name, avatar, email or preferences."""
    async with db_session(request) as db:
        current = await authenticate(request, db)
        body = await parse_body(request, ProfileUpdate)
        user = await users.update_profile(db, await users.get_user(db, current.id), body.model_dump(exclude_unset=True))
        await db.commit()
    return json_response(UserOut.model_validate(user))


async def get_user(request: web.Request) -> web.Response:
    """Another user's public fields (never email or preferences)."""
    async with db_session(request) as db:
        await authenticate(request, db)
        user = await load_user(request, db, path_uuid(request, "user_id"))
    return json_response(UserPublic.model_validate(user.model_dump()))


ENDPOINTS = (
    Endpoint(
        "POST",
        f"{PREFIX}/register",
        register,
        "Create an account (and get a token)",
        "users",
        body=RegisterIn,
        response=TokenOut,
        status=201,
        auth=False,
        errors=(400, 409, 413, 422),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/login",
        login,
        "Log in",
        "users",
        body=LoginIn,
        response=TokenOut,
        auth=False,
        errors=(400, 401, 422, 429),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/token/refresh",
        refresh_token,
        "A new access token for a signed-in user",
        "users",
        response=TokenOut,
        errors=(401,),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/logout",
        logout,
        "End this token's login (and tokens refreshed from it); its sockets are disconnected",
        "users",
        status=204,
        errors=(401,),
    ),
    Endpoint(
        "POST",
        f"{PREFIX}/me/password",
        change_password,
        "Change my password: every other login ends, and this call returns a new token",
        "users",
        body=PasswordChangeIn,
        response=TokenOut,
        errors=(400, 401, 403, 422, 429),
    ),
    Endpoint("GET", f"{PREFIX}/me", get_me, "My account", "users", response=UserOut, errors=(401,)),
    Endpoint(
        "PUT",
        f"{PREFIX}/me",
        update_me,
        "Update my profile",
        "users",
        body=ProfileUpdate,
        response=UserOut,
        errors=(400, 401, 409, 422),
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/{{user_id}}",
        get_user,
        "A user's public profile",
        "users",
        response=UserPublic,
        errors=(401, 404),
    ),
)
