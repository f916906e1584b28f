"""The Socket.IO server: created per app, fanned out through Redis when configured, shut down cleanly."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as engineio_aiohttp

from core.tasks import TaskSet
from handlers.chat import ChatNamespace
from handlers.context import ChatContext
from handlers.tokens import Revocations
from server import keys
from server.outbound import BoundedEngineIO, SocketServer
from turns.access import Access
from turns.answers import Answers
from turns.broadcast import Broadcaster, Outbox
from turns.control import MemoryTurnGate, RedisTurnGate, StopBus, TurnGate
from turns.delta_log import DeltaLog, MemoryDeltaLog, RedisDeltaLog
from turns.intake import Intake
from turns.presence import MemoryPresence, Presence, RedisPresence
from turns.writer import BatchWriter

log = logging.getLogger(__name__)
#: how long in-flight answers get to finish and be stored as `cancelled` at shutdown
SHUTDOWN_GRACE_SECONDS = 5.0
STEP_SECONDS = 5.0


class ConnectedOnly(socketio.AsyncManager):
    """Room events reach connected sockets only.

    python-socketio puts a connecting socket in its namespace's room before the connect handler runs, and
    sends it the room's events from then on: a `presence` or `message_created` could arrive before the
    socket's own CONNECT packet (and before it was authorized). Its events start once it is connected.
    """

    def get_participants(self, namespace: str, room: Any) -> Any:
        pending = self.pending_connect.get(namespace, ())
        for sid, eio_sid in super().get_participants(namespace, room):
            if sid not in pending:
                yield sid, eio_sid


class RedisManager(ConnectedOnly, socketio.AsyncRedisManager):
    """python-socketio's Redis manager, connecting once.

    Upstream, the publisher and the listener each call `_redis_connect`, and the second call replaces
    the first client without closing it: one Redis connection leaks per process. Reusing the client is
    safe, since redis-py reconnects its pooled connections and PubSub by itself.
    """

    def _redis_connect(self) -> None:
        if self.redis is None:
            super()._redis_connect()
        self.connected = True


class ClosingWebSocket(engineio_aiohttp.WebSocket):
    """python-engineio's aiohttp websocket, closing its Engine.IO socket however the handler ends.

    Upstream decodes a frame outside its error handling: an empty text frame killed the handler, our error
    middleware then wrote a 500 into the upgraded stream, and the socket stayed counted until its ping
    timeout (~45 s), holding shutdown too. An empty text frame now ends the connection like a close.
    """

    async def __call__(self, environ: dict[str, Any]) -> Any:
        socket = self.handler.__self__
        transports = getattr(self.server, "connections", {})
        transport = environ["aiohttp.request"].transport
        if transport is not None:
            transports[socket.sid] = transport  # so a slow consumer can be cut off (server/outbound.py)
        try:
            return await super().__call__(environ)
        finally:
            transports.pop(socket.sid, None)
            if not socket.closed:
                reason = socket.server.reason.TRANSPORT_CLOSE
                await asyncio.shield(socket.close(wait=False, abort=True, reason=reason))

    async def wait(self) -> Any:
        data = await super().wait()
        return None if data == "" else data  # an empty binary frame is a valid (empty) attachment


def create_sio(app: web.Application) -> socketio.AsyncServer:
    """An AsyncServer for `app`, attached at /socket.io (Redis manager when REDIS_URL is set)."""
    settings = app[keys.SETTINGS]
    manager = RedisManager(settings.redis_url) if settings.redis_url else ConnectedOnly()
    sio = SocketServer(
        async_mode="aiohttp",
        client_manager=manager,
        namespaces="*",
        cors_allowed_origins=list(settings.cors_origins) or None,
        # larger than any payload we accept, so oversized events reach a handler that refuses them with a
        # clear error instead of engine.io dropping the connection
        max_http_buffer_size=settings.socket_max_message_bytes,
        max_queued_bytes=settings.socket_max_queued_bytes,  # a client that stops reading is disconnected
        logger=False,
        engineio_logger=False,
    )
    if "websocket" in sio.eio._async:  # a private table: keep upstream's driver if it ever moves
        sio.eio._async = {**sio.eio._async, "websocket": ClosingWebSocket}
    sio.attach(app, socketio_path="socket.io")
    return sio


async def realtime_ctx(app: web.Application) -> AsyncIterator[None]:
    """The chat namespace and the machinery behind it; answers finish or are saved at shutdown."""
    sio = app[keys.SIO]
    redis = app.get(keys.REDIS)
    deltas: DeltaLog = RedisDeltaLog(redis) if redis is not None else MemoryDeltaLog()
    lease = app[keys.SETTINGS].turn_lease_seconds
    gate: TurnGate = RedisTurnGate(redis, lease) if redis is not None else MemoryTurnGate(lease)
    broadcaster = Broadcaster(sio)
    settings = app[keys.SETTINGS]
    answers = Answers(
        broadcaster,
        app[keys.SESSIONMAKER],
        app[keys.UNITS],
        app[keys.ANSWER_MODEL],
        deltas,
        gate,
        app[keys.RETRIEVER],
        app[keys.SPEECH],
        app[keys.METRICS],
        attachments=app[keys.ATTACHMENTS],
    )
    writer = BatchWriter(
        app[keys.UNITS],
        window_seconds=settings.message_batch_window_ms / 1000,
        max_batch=settings.message_batch_max,
        # SQLite has one writer at a time anyway; PostgreSQL commits a few batches at once, within the pool
        concurrency=1 if settings.database_url.startswith("sqlite") else max(1, min(4, settings.db_pool_size // 2)),
        observe=app[keys.METRICS].message_batch.observe,
    )
    outbox = Outbox(broadcaster)
    access = app[keys.ACCESS] = Access(app[keys.CACHE], app[keys.SESSIONMAKER])
    intake = Intake(
        sessionmaker=app[keys.SESSIONMAKER],
        access=access,
        limiter=app[keys.LIMITER],
        limits=app[keys.LIMITS],
        gate=gate,
        answers=answers,
        speech=app[keys.SPEECH],
        metrics=app[keys.METRICS],
        max_message_chars=settings.max_message_chars,
        writer=writer,
        outbox=outbox,
        attachments=app[keys.ATTACHMENTS],
    )

    async def on_stop(answer_id: uuid.UUID) -> None:
        await answers.stop(answer_id)

    stops = StopBus(on_stop, redis)
    revocations = app[keys.REVOCATIONS] = Revocations(sio, broadcaster, redis)
    presence: Presence = (
        RedisPresence(redis, settings.presence_node_ttl_seconds) if redis is not None else MemoryPresence()
    )
    namespace = ChatNamespace(
        ChatContext(
            auth=app[keys.AUTH],
            sessionmaker=app[keys.SESSIONMAKER],
            intake=intake,
            broadcaster=broadcaster,
            deltas=deltas,
            gate=gate,
            stops=stops,
            speech=app[keys.SPEECH],
            limiter=app[keys.LIMITER],
            limits=app[keys.LIMITS],
            metrics=app[keys.METRICS],
            cache=app[keys.CACHE],
            access=access,
            presence=presence,
            trust_forwarded_for=settings.trust_forwarded_for,
            auto_answer=settings.auto_answer,
            revocations=revocations,
        )
    )
    sio.register_namespace(namespace)
    app[keys.ANSWERS] = answers
    app[keys.TURN_GATE] = gate
    app[keys.BROADCASTER] = broadcaster
    app[keys.INTAKE] = intake
    background = TaskSet()
    background.spawn(stops.listen(), name="stop-bus")
    background.spawn(revocations.listen(), name="revocations")
    background.spawn(presence.run(), name="presence")
    background.spawn(answers.sweep_forever(), name="interrupted-answers")

    async def on_shutdown(_app: web.Application) -> None:
        # before aiohttp waits for open connections: end answers (stored, announced), then close sockets
        await _bounded(answers.shutdown(SHUTDOWN_GRACE_SECONDS), "finishing answers", SHUTDOWN_GRACE_SECONDS + 5)
        if sio.eio.sockets:  # every client: they reconnect to another node
            await _bounded(sio.eio.disconnect(), "disconnecting clients", STEP_SECONDS)
        if isinstance(sio.eio, BoundedEngineIO):
            sio.eio.abort_connections()  # those that did not read their goodbye
        await _bounded(sio.shutdown(), "stopping Socket.IO", STEP_SECONDS)

    app.on_shutdown.append(on_shutdown)
    yield
    await _bounded(answers.shutdown(0), "cancelling answers", STEP_SECONDS)
    await _bounded(writer.close(), "storing the last batch of messages", STEP_SECONDS)
    await _bounded(outbox.close(), "sending the last events", STEP_SECONDS)
    await _bounded(namespace.tasks.close(), "cancelling connection timers", STEP_SECONDS)
    await _bounded(intake.close(), "cancelling attachment notices", STEP_SECONDS)
    await _bounded(background.close(), "stopping the stop bus", STEP_SECONDS)
    await _bounded(_close_manager(sio), "closing the Redis client manager", STEP_SECONDS)


async def _close_manager(sio: socketio.AsyncServer) -> None:
    """Stop the Redis manager's listener and close its connections (python-socketio leaves them open)."""
    manager = sio.manager
    if not isinstance(manager, socketio.AsyncRedisManager):
        return
    listener = getattr(manager, "thread", None)
    if isinstance(listener, asyncio.Task):
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    if manager.pubsub is not None:
        await manager.pubsub.aclose()
    if manager.redis is not None:
        await manager.redis.aclose()


async def _bounded(step: Awaitable[None], what: str, seconds: float) -> None:
    """Run one shutdown step, but never let it hold the process: log and move on after `seconds`."""
    log.info("shutdown: %s", what)
    try:
        async with asyncio.timeout(seconds):
            await step
    except TimeoutError:
        log.warning("shutdown: %s took over %.0f s; moving on", what, seconds)
