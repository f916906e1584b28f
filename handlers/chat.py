"""The chat namespace `/chat/<session_id>`: one catch-all class serving every session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import socketio
from sqlalchemy.ext.asyncio import AsyncSession

from core import logs
from core.auth import InvalidToken, bearer_token
from core.errors import Refused
from core.ratelimit import Limit, RateLimited
from core.tasks import TaskSet
from handlers.context import ChatContext
from handlers.errors import EventError
from handlers.events import ChatEvents
from handlers.speech import SpeechEvents
from handlers.tokens import verify
from store import sessions, users
from store.cache import SESSION_TTL, session_key
from store.errors import NotFound, StoreError, database_unavailable
from store.schemas import SessionOut
from turns.access import Role
from turns.broadcast import namespace_of
from turns.intake import Author
from turns.wire import ErrorEvent, PresenceEvent, PresentUser, Refusal

log = logging.getLogger(__name__)
CHAT_PREFIX = "/chat/"
#: what an event costs of the socket event allowances: the ones that read or compute much cost more
EVENT_COST = {"sync": 5, "tts_request": 10, "edit_message": 2, "delete_message": 2}
#: events that change the room: a viewer's are refused `forbidden` (sync and tts_request only read)
WRITE_EVENTS = frozenset(
    {
        "user_message",
        "typing",
        "stop_generation",
        "edit_message",
        "delete_message",
        "audio_start",
        "audio_chunk",
        "audio_end",
        "audio_cancel",
    }
)
#: how long the announcement of a join waits for the socket to be fully connected (it then goes anyway)
ANNOUNCE_WAIT_SECONDS = 5.0


def session_id_of(namespace: str) -> uuid.UUID | None:
    """The session a `/chat/<session_id>` namespace names, in any spelling `uuid.UUID` reads; None for any
    other namespace. Only `namespace_of(session_id)` is served: see `on_connect`."""
    prefix, _, rest = namespace.partition(CHAT_PREFIX)
    if prefix or not rest:
        return None
    try:
        return uuid.UUID(rest)
    except ValueError:
        return None


def client_address(environ: dict[str, Any], trust_forwarded_for: bool) -> str:
    """The peer's address (engine.io's own REMOTE_ADDR is a placeholder), or X-Forwarded-For's first hop."""
    if trust_forwarded_for:
        forwarded = str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")[0].strip()
        if forwarded:
            return forwarded
    request = environ.get("aiohttp.request")
    return str(getattr(request, "remote", None) or environ.get("REMOTE_ADDR") or "unknown")


def _token(environ: dict[str, Any], auth: Any) -> str | None:
    if isinstance(auth, dict) and isinstance(auth.get("token"), str):
        return str(auth["token"])
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if query.get("token"):
        return query["token"][0]
    return bearer_token(environ.get("HTTP_AUTHORIZATION"))


Handler = Callable[[str, str, Any], Awaitable[Any]]


class ChatNamespace(socketio.AsyncNamespace):
    """Catch-all namespace; every handler gets the real namespace first and passes it on explicitly."""

    def __init__(self, context: ChatContext) -> None:
        super().__init__("*")
        self.ctx = context
        self._expiry: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._sockets_per_session: Counter[str] = Counter()
        self.tasks = TaskSet()
        self._events: dict[str, Handler] = {}
        self.chat = ChatEvents(self, context)
        self.voice = SpeechEvents(self, context)
        self._events.update(self.chat.handlers())
        self._events.update(self.voice.handlers())

    # -- connection ------------------------------------------------------------------------------

    async def on_connect(self, namespace: str, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        session_id = session_id_of(namespace)
        if session_id is None:
            raise socketio.exceptions.ConnectionRefusedError(
                "not_found", {"code": "not_found", "message": "connect to /chat/<session_id>"}
            )
        canonical = namespace_of(session_id)
        if namespace != canonical:  # a namespace is a room: one spelling per session
            message = f"connect to {canonical}: a session has one namespace, its id in lower case with hyphens"
            raise socketio.exceptions.ConnectionRefusedError(
                message, {"code": "non_canonical_namespace", "message": message, "namespace": canonical}
            )
        ip = client_address(environ, self.ctx.trust_forwarded_for)
        await self._limit_connect(self.ctx.limits.connect_ip, ip)
        token = _token(environ, auth)
        if token is None:
            raise _refuse("unauthorized", "send a token: auth {token}, ?token= or Authorization: Bearer")
        try:
            claims = self.ctx.auth.decode_token(token)
        except InvalidToken as exc:
            raise _refuse("unauthorized", str(exc)) from exc
        await self._limit_connect(self.ctx.limits.connect_user, claims.user_id)
        try:
            async with self.ctx.sessionmaker() as db:
                await verify(self.ctx.auth, db, self.ctx.cache, token)
                user = await users.get_user(db, claims.user_id)
                role = await self.ctx.access.role(session_id, user.id, db)
                session = await self._session(db, session_id) if role is not None else None
        except NotFound as exc:
            raise _refuse("unauthorized", "the account behind this token no longer exists") from exc
        except InvalidToken as exc:
            raise _refuse(exc.code, str(exc)) from exc
        except Exception as exc:
            if database_unavailable(exc):
                raise _refuse("unavailable", "the database is unavailable; try again shortly") from exc
            raise
        if session is None or role is None:  # unknown, or someone else's: the same answer
            raise _refuse("not_found", "no such session")
        if session.is_archived:
            raise _refuse("archived", "the session is archived and read-only")
        state = {
            "user_id": user.id,
            "username": user.username,
            "session_id": session_id,
            "ip": ip,
            "login_id": claims.login_id,
            "role": role.value,
        }
        await self.save_session(sid, state, namespace=namespace)
        if self.ctx.revocations is not None:
            self.ctx.revocations.track(claims.login_id, session_id, sid, user.id)
        await self.ctx.presence.join(session_id, user.id, user.username)
        self.ctx.metrics.connections.labels("chat").inc()
        self._sockets_per_session[namespace] += 1
        if self._sockets_per_session[namespace] == 1:
            self.ctx.metrics.active_sessions.inc()
        delay = (claims.expires_at - datetime.now(UTC)).total_seconds()
        self._expiry[(namespace, sid)] = asyncio.get_running_loop().call_later(
            max(0.0, delay), lambda: self.tasks.spawn(self._expire(namespace, sid), name=f"expire-{sid}")
        )
        self.tasks.spawn(self._announce(session_id, namespace, sid), name=f"presence-{sid}")

    async def _announce(self, session_id: uuid.UUID, namespace: str, sid: str | None = None) -> None:
        """Tell the room who is in it; for a join, once the joining socket is fully connected (python-socketio
        adds it to the room only after `on_connect` returns), so it hears the announcement too."""
        if sid is not None:
            manager = self.server.manager
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ANNOUNCE_WAIT_SECONDS):
                    # python-socketio has no hook for "fully connected": look, briefly
                    while (namespace, sid) in self._expiry and not manager.is_connected(sid, namespace):  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
        present = await self.ctx.presence.users(session_id)
        users_here = [PresentUser(user_id=p.user_id, username=p.username, devices=p.devices) for p in present]
        await self.ctx.broadcaster.emit(session_id, PresenceEvent(users=users_here))

    async def _limit_connect(self, limit: Limit, subject: object) -> None:
        try:
            await self.ctx.limiter.hit(limit, subject)
        except RateLimited as exc:
            raise socketio.exceptions.ConnectionRefusedError(
                str(exc), {"code": "rate_limited", "message": str(exc), "retry_after": exc.retry_after}
            ) from exc

    async def _session(self, db: AsyncSession, session_id: uuid.UUID) -> SessionOut | None:
        """The session from the cache (`session:{id}`, 1 h), or from the database into the cache."""
        key = session_key(session_id)
        cached = await self.ctx.cache.get(key, SessionOut)
        if cached is not None:
            return cached
        try:
            session = SessionOut.model_validate(await sessions.get_session(db, session_id))
        except NotFound:
            return None
        await self.ctx.cache.put(key, session, SESSION_TTL)
        return session

    async def _expire(self, namespace: str, sid: str) -> None:
        _, session_id = await self.who(namespace, sid)
        expired = ErrorEvent(code="auth_expired", message="the token expired: log in again")
        await self.ctx.broadcaster.emit(session_id, expired, to=sid)
        await self.disconnect(sid, namespace=namespace)

    async def on_disconnect(self, namespace: str, sid: str, reason: Any = None) -> None:
        handle = self._expiry.pop((namespace, sid), None)
        if handle is not None:  # only connections that were accepted have a timer
            handle.cancel()
            state = await self.get_session(sid, namespace=namespace)
            if self.ctx.revocations is not None:
                self.ctx.revocations.forget(state["login_id"], state["session_id"], sid, state["user_id"])
            await self.ctx.presence.leave(state["session_id"], state["user_id"], state["username"])
            self.tasks.spawn(self._announce(state["session_id"], namespace), name=f"presence-left-{sid}")
            self.ctx.metrics.connections.labels("chat").dec()
            self._sockets_per_session[namespace] -= 1
            if self._sockets_per_session[namespace] <= 0:
                del self._sockets_per_session[namespace]
                self.ctx.metrics.active_sessions.dec()
        await self.voice.drop(namespace, sid)
        self.voice.forget(namespace, sid)

    # -- dispatch --------------------------------------------------------------------------------

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        namespace, sid, *rest = args
        data = rest[0] if rest else None
        handler = self._events.get(event)
        state = await self.get_session(sid, namespace=namespace)
        logs.bind(request_id=logs.new_request_id(), user_id=state.get("user_id"), session_id=state.get("session_id"))
        try:
            await self._limit_event(state, event)
            if handler is None:
                raise EventError("unknown_event", f"no such event: {event!r}")
            if event in WRITE_EVENTS and state.get("role") == Role.viewer:
                raise Refused("forbidden", "viewers read this session but may not write to it", status=403)
            return await handler(namespace, sid, data)
        except RateLimited as exc:
            return await self._refuse_event(
                namespace, sid, event, "rate_limited", str(exc), retry_after=exc.retry_after
            )
        except Refused as exc:
            return await self._refuse_event(
                namespace, sid, event, exc.code, exc.message, exc.details, retry_after=exc.retry_after
            )
        except StoreError as exc:
            return await self._refuse_event(namespace, sid, event, exc.code, exc.message)
        except Exception as exc:
            if database_unavailable(exc):
                message = "the database is unavailable; try again shortly"
                return await self._refuse_event(namespace, sid, event, "unavailable", message)
            incident = uuid.uuid4().hex[:12]
            log.exception("event %s on %s (sid %s) failed (incident %s)", event, namespace, sid, incident)
            return await self._refuse_event(namespace, sid, event, "internal_error", f"internal error ({incident})")

    async def _limit_event(self, state: dict[str, Any], event: str) -> None:
        """Every event spends the socket's event allowances (the costlier ones more), before anything runs."""
        limits = self.ctx.limits
        await self.ctx.limiter.hit_all(
            [(limits.event_user, state["user_id"]), (limits.event_ip, str(state.get("ip", "unknown")))],
            cost=EVENT_COST.get(event, 1),
        )

    async def _refuse_event(
        self,
        namespace: str,
        sid: str,
        event: str,
        code: str,
        message: str,
        details: Any = None,
        retry_after: int | None = None,
    ) -> Refusal:
        error = ErrorEvent(code=code, message=message, refused=event, details=details, retry_after=retry_after)
        self.ctx.metrics.errors.labels("socket", code).inc()
        state = await self.get_session(sid, namespace=namespace)
        session_id = state.get("session_id") or session_id_of(namespace)
        if session_id is not None:
            await self.ctx.broadcaster.emit(session_id, error, to=sid)
        return Refusal(error=error)

    async def who(self, namespace: str, sid: str) -> tuple[uuid.UUID, uuid.UUID]:
        state = await self.get_session(sid, namespace=namespace)
        return state["user_id"], state["session_id"]

    async def address(self, namespace: str, sid: str) -> str:
        """The client address the socket connected from."""
        state = await self.get_session(sid, namespace=namespace)
        return str(state.get("ip", "unknown"))

    async def username(self, namespace: str, sid: str) -> str:
        state = await self.get_session(sid, namespace=namespace)
        return str(state["username"])

    async def author(self, namespace: str, sid: str) -> tuple[Author, uuid.UUID]:
        """Who sends from the socket, and the socket's session, from one read of its state."""
        state = await self.get_session(sid, namespace=namespace)
        author = Author(state["user_id"], str(state.get("ip", "unknown")), sid, state["username"])
        return author, state["session_id"]


def _refuse(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})
