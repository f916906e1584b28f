"""Accounts: register, log in, read and update the profile, look up other users."""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.deps import audit, authenticate, client_ip, db_session, load_user
from server.endpoints import Endpoint, json_response
from server.errors import ApiError
from server.schemas import LoginIn, ProfileUpdate, RegisterIn, TokenOut
from server.validation import parse_body, path_uuid
from store import users
from store.models import User
from store.schemas import UserOut, UserPublic
from store.types import utcnow

PREFIX = "/api/v1/users"


def _token_for(request: web.Request, user: User | UserOut) -> TokenOut:
    auth = request.app[keys.AUTH]
    return TokenOut(
        access_token=auth.issue_token(user.id), expires_in=auth.ttl_seconds, user=UserOut.model_validate(user)
    )


async def register(request: web.Request) -> web.Response:
    """Create an account and sign it in."""
    body = await parse_body(request, RegisterIn)
    password_hash = await request.app[keys.AUTH].hash_password(body.password)
    async with db_session(request) as db:
        user = await users.create_user(
            db, username=body.username, password_hash=password_hash, email=body.email, full_name=body.full_name
        )
        audit(request, db, "register", user_id=user.id, target_type="user", target_id=user.id)
        await db.commit()
    return json_response(_token_for(request, user), status=201)


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
        await users.touch_active(db, user.id, user.last_active_at, utcnow())
        await db.commit()
    return json_response(_token_for(request, user))


async def refresh_token(request: web.Request) -> web.Response:
    """A fresh access token for a signed-in user whose token has not expired yet."""
    async with db_session(request) as db:
        user = await authenticate(request, db)
        audit(request, db, "token_refresh", user_id=user.id)
        await db.commit()
    return json_response(_token_for(request, user))


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
