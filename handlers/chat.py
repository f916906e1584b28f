"""The chat namespace `/chat/<session_id>`: one catch-all class serving every session."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import socketio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.answers import Answers, message_payload
from handlers.control import StopBus, TurnGate
from handlers.delta_log import DeltaLog
from handlers.errors import EventError, parse
from handlers.payloads import DeleteIn, EditIn, StopIn, SyncIn, TypingIn, UserMessageIn
from handlers.speech import SpeechEvents
from pipelines.chat.turn import TurnRequest
from pipelines.speech.service import Speech
from pipelines.tasks import TaskSet
from server import logs
from server.auth import Auth, InvalidToken, bearer_token
from server.metrics import Metrics
from server.ratelimit import Limit, Limits, RateLimited, RateLimiter
from server.tokens import Revocations, verify
from store import audit, messages, sessions, users
from store.cache import SESSION_TTL, Cache, session_key
from store.errors import NotFound, StoreError, database_unavailable
from store.models import ContentType, MessageStatus
from store.schemas import SessionOut

log = logging.getLogger(__name__)
NAMESPACE = re.compile(r"^/chat/([0-9a-fA-F-]{36})$")


@dataclass(frozen=True)
class ChatContext:
    """What the namespace needs from the app."""

    auth: Auth
    sessionmaker: async_sessionmaker[AsyncSession]
    answers: Answers
    deltas: DeltaLog
    gate: TurnGate
    stops: StopBus
    max_message_chars: int
    speech: Speech
    limiter: RateLimiter
    limits: Limits
    metrics: Metrics
    cache: Cache
    trust_forwarded_for: bool = False
    auto_answer: bool = True  # False stores messages without answering (benchmarks, human-only rooms)
    revocations: Revocations | None = None  # ends the sockets of a revoked login


def session_id_of(namespace: str) -> uuid.UUID | None:
    """The session a `/chat/<uuid>` namespace names, or None for any other namespace."""
    match = NAMESPACE.match(namespace)
    if match is None:
        return None
    try:
        return uuid.UUID(match.group(1))
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
        self._events: dict[str, Handler] = {
            "user_message": self._user_message,
            "typing": self._typing,
            "stop_generation": self._stop_generation,
            "edit_message": self._edit_message,
            "delete_message": self._delete_message,
            "sync": self._sync,
        }
        self.voice = SpeechEvents(self, context.speech)
        self._events.update(self.voice.handlers())

    # -- connection ------------------------------------------------------------------------------

    async def on_connect(self, namespace: str, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        session_id = session_id_of(namespace)
        if session_id is None:
            raise socketio.exceptions.ConnectionRefusedError(
                "not_found", {"code": "not_found", "message": "connect to /chat/<session_id>"}
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
                session = await self._session(db, session_id)
        except NotFound as exc:
            raise _refuse("unauthorized", "the account behind this token no longer exists") from exc
        except InvalidToken as exc:
            raise _refuse(exc.code, str(exc)) from exc
        except Exception as exc:
            if database_unavailable(exc):
                raise _refuse("unavailable", "the database is unavailable; try again shortly") from exc
            raise
        if session is None or session.user_id != user.id:  # unknown or someone else's: the same answer
            raise _refuse("not_found", "no such session")
        if session.is_archived:
            raise _refuse("archived", "the session is archived and read-only")
        state = {"user_id": user.id, "session_id": session_id, "ip": ip, "login_id": claims.login_id}
        await self.save_session(sid, state, namespace=namespace)
        if self.ctx.revocations is not None:
            self.ctx.revocations.track(claims.login_id, namespace, sid)
        self.ctx.metrics.connections.labels("chat").inc()
        self._sockets_per_session[namespace] += 1
        if self._sockets_per_session[namespace] == 1:
            self.ctx.metrics.active_sessions.inc()
        delay = (claims.expires_at - datetime.now(UTC)).total_seconds()
        self._expiry[(namespace, sid)] = asyncio.get_running_loop().call_later(
            max(0.0, delay), lambda: self.tasks.spawn(self._expire(namespace, sid), name=f"expire-{sid}")
        )

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
        await self.emit(
            "error", {"code": "auth_expired", "message": "the token expired: log in again"}, to=sid, namespace=namespace
        )
        await self.disconnect(sid, namespace=namespace)

    async def on_disconnect(self, namespace: str, sid: str, reason: Any = None) -> None:
        handle = self._expiry.pop((namespace, sid), None)
        if handle is not None:  # only connections that were accepted have a timer
            handle.cancel()
            if self.ctx.revocations is not None:
                state = await self.get_session(sid, namespace=namespace)
                self.ctx.revocations.forget(state["login_id"], namespace, sid)
            self.ctx.metrics.connections.labels("chat").dec()
            self._sockets_per_session[namespace] -= 1
            if self._sockets_per_session[namespace] <= 0:
                del self._sockets_per_session[namespace]
                self.ctx.metrics.active_sessions.dec()
        await self.voice.drop(namespace, sid)

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
            if handler is None:
                raise EventError("unknown_event", f"no such event: {event!r}")
            return await handler(namespace, sid, data)
        except RateLimited as exc:
            extra = {"retry_after": exc.retry_after}
            return await self._refuse_event(namespace, sid, event, "rate_limited", str(exc), extra=extra)
        except EventError as exc:
            return await self._refuse_event(namespace, sid, event, exc.code, exc.message, exc.details)
        except StoreError as exc:
            return await self._refuse_event(namespace, sid, event, exc.code, exc.message)
        except Exception as exc:
            if database_unavailable(exc):
                message = "the database is unavailable; try again shortly"
                return await self._refuse_event(namespace, sid, event, "unavailable", message)
            incident = uuid.uuid4().hex[:12]
            log.exception("event %s on %s (sid %s) failed (incident %s)", event, namespace, sid, incident)
            return await self._refuse_event(namespace, sid, event, "internal_error", f"internal error ({incident})")

    async def _refuse_event(
        self,
        namespace: str,
        sid: str,
        event: str,
        code: str,
        message: str,
        details: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        error: dict[str, Any] = {"code": code, "message": message, "event": event, **(extra or {})}
        if details is not None:
            error["details"] = details
        self.ctx.metrics.errors.labels("socket", code).inc()
        await self.emit("error", error, to=sid, namespace=namespace)
        return {"ok": False, "error": error}

    async def who(self, namespace: str, sid: str) -> tuple[uuid.UUID, uuid.UUID]:
        state = await self.get_session(sid, namespace=namespace)
        return state["user_id"], state["session_id"]

    async def address(self, namespace: str, sid: str) -> str:
        """The client address the socket connected from."""
        state = await self.get_session(sid, namespace=namespace)
        return str(state.get("ip", "unknown"))

    async def charge(self, namespace: str, sid: str, user_limit: Limit, ip_limit: Limit, cost: int = 1) -> None:
        """Spend `cost` of the socket's user and address allowances, or raise `RateLimited`."""
        user_id, _ = await self.who(namespace, sid)
        await self.ctx.limiter.hit(user_limit, user_id, cost)
        await self.ctx.limiter.hit(ip_limit, await self.address(namespace, sid), cost)

    # -- events ----------------------------------------------------------------------------------

    async def _user_message(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: UserMessageIn = parse(UserMessageIn, data)
        if len(body.content) > self.ctx.max_message_chars:
            raise EventError("message_too_long", f"a message holds at most {self.ctx.max_message_chars} characters")
        return await self.accept_message(namespace, sid, content=body.content, client_id=body.client_id)

    async def accept_message(
        self,
        namespace: str,
        sid: str,
        *,
        content: str,
        client_id: str | None = None,
        content_type: ContentType = ContentType.text,
        message_id: uuid.UUID | None = None,
        audio_url: str | None = None,
    ) -> dict[str, Any]:
        """Store a user message exactly once and start its answer: the path text and voice share."""
        user_id, session_id = await self.who(namespace, sid)
        async with self.ctx.sessionmaker() as db:
            session = await sessions.get_owned_session(db, session_id, user_id)
            if client_id is not None:
                existing = await messages.find_by_client_id(db, session_id, client_id)
                if existing is not None:  # a retry: the first copy, no second answer, nothing charged
                    return {"ok": True, "message": message_payload(existing), "duplicate": True}
            await self.charge(namespace, sid, self.ctx.limits.message_user, self.ctx.limits.message_ip)
            answer_id = uuid.uuid4()
            if self.ctx.auto_answer and not await self.ctx.gate.acquire(session_id, answer_id):
                raise EventError("busy", "the assistant is still answering: wait for assistant_response or stop it")
            try:
                posted = await messages.post_user_message(
                    db,
                    session,
                    user_id=user_id,
                    content=content,
                    content_type=content_type,
                    client_id=client_id,
                    message_id=message_id,
                    audio_url=audio_url,
                )
            except BaseException:
                await self.ctx.gate.release(session_id, answer_id)
                raise
        payload = message_payload(posted.message)
        if not posted.created:
            await self.ctx.gate.release(session_id, answer_id)
            return {"ok": True, "message": payload, "duplicate": True}
        self.ctx.metrics.messages.labels("user").inc()
        await self.emit("message_created", {"message": payload}, namespace=namespace, skip_sid=sid)
        session_payload = SessionOut.model_validate(posted.session).model_dump(mode="json")
        await self.emit("session_updated", {"session": session_payload}, namespace=namespace)
        if self.ctx.auto_answer:
            request = TurnRequest(session_id, posted.message.id, answer_id, user_id, dict(posted.session.rag_config))
            self.ctx.answers.start(namespace, request)
        return {"ok": True, "message": payload}

    async def _typing(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: TypingIn = parse(TypingIn, data)
        user_id, _ = await self.who(namespace, sid)
        await self.emit(
            "typing_indicator",
            {"user_id": str(user_id), "is_typing": body.is_typing},
            namespace=namespace,
            skip_sid=sid,
        )
        return {"ok": True}

    async def _stop_generation(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: StopIn = parse(StopIn, data)
        _, session_id = await self.who(namespace, sid)
        answer_id = body.message_id or await self.ctx.gate.current(session_id)
        if answer_id is None:
            return {"ok": True, "stopped": None}
        async with self.ctx.sessionmaker() as db:
            answer = await messages.get_in_session(db, answer_id, session_id)
        if answer.status is MessageStatus.streaming:
            await self.ctx.stops.request(answer_id)
        return {"ok": True, "stopped": str(answer_id)}

    async def _edit_message(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: EditIn = parse(EditIn, data)
        if len(body.content) > self.ctx.max_message_chars:
            raise EventError("message_too_long", f"a message holds at most {self.ctx.max_message_chars} characters")
        user_id, session_id = await self.who(namespace, sid)
        async with self.ctx.sessionmaker() as db:
            message, session = await messages.get_owned_message(db, body.message_id, user_id)
            if session.id != session_id:
                raise NotFound("no such message")
            await self._audit(db, namespace, sid, "message_edit", message.id)
            message = await messages.edit_message(db, message, session, user_id=user_id, content=body.content)
        payload = message_payload(message)
        await self.emit("message_updated", {"message": payload}, namespace=namespace, skip_sid=sid)
        return {"ok": True, "message": payload}

    async def _delete_message(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: DeleteIn = parse(DeleteIn, data)
        user_id, session_id = await self.who(namespace, sid)
        async with self.ctx.sessionmaker() as db:
            message, session = await messages.get_owned_message(db, body.message_id, user_id)
            if session.id != session_id:
                raise NotFound("no such message")
            await self._audit(db, namespace, sid, "message_delete", message.id)
            message = await messages.delete_message(db, message, session)
        payload = message_payload(message)
        await self.emit("message_deleted", {"message": payload}, namespace=namespace, skip_sid=sid)
        return {"ok": True, "message": payload}

    async def _audit(self, db: AsyncSession, namespace: str, sid: str, action: str, message_id: uuid.UUID) -> None:
        """An audit event that commits with the change it records."""
        user_id, _ = await self.who(namespace, sid)
        audit.record(
            db,
            action,
            user_id=user_id,
            target_type="message",
            target_id=message_id,
            ip=await self.address(namespace, sid),
            request_id=logs.REQUEST_ID.get(),
            details={"via": "socket"},
        )

    async def _sync(self, namespace: str, sid: str, data: Any) -> dict[str, Any]:
        body: SyncIn = parse(SyncIn, data)
        _, session_id = await self.who(namespace, sid)
        reply: dict[str, Any] = {"ok": True}
        async with self.ctx.sessionmaker() as db:
            if body.message_id is None or body.after_message_id is not None:
                after = None
                if body.after_message_id is not None:
                    after = await messages.get_in_session(db, body.after_message_id, session_id)
                reply["messages"] = [message_payload(m) for m in await messages.messages_after(db, session_id, after)]
            if body.message_id is not None:
                answer = await messages.get_in_session(db, body.message_id, session_id)
                deltas = await self.ctx.deltas.read(answer.id, body.last_seq)
                reply["stream"] = {
                    "message_id": str(answer.id),
                    "status": answer.status.value,
                    "deltas": [{"seq": seq, "delta": delta} for seq, delta in deltas],
                    "message": message_payload(answer),
                }
        return reply


def _refuse(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})
