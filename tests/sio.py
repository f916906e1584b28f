"""A real python-socketio client for tests that records what the server emits."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import jsonschema_rs
import socketio
from pydantic import BaseModel, ValidationError

from turns.wire import ACKS, SERVER_EVENTS, Refusal, ServerEvent

MODELS: dict[str, type[ServerEvent]] = {model.event: model for model in SERVER_EVENTS}
EVENTS = tuple(MODELS)


def mismatch(model: type[BaseModel], data: Any, wire: Callable[[Any], Any]) -> str | None:
    """Why `data` is not exactly what `model` sends (invalid, or keys/values lost or added), or None."""
    try:
        again = wire(model.model_validate(data))
    except ValidationError as exc:
        return f"invalid for {model.__name__}: {exc}"
    if again != data:
        return f"not what {model.__name__} sends: got {data!r}, the model sends {again!r}"
    return None


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", by_alias=True)


def payload_validator(document: dict[str, Any], message: str) -> Any:
    """A JSON schema validator for the payload of `message` as the AsyncAPI document describes it."""
    schema = {**document["components"]["messages"][message]["payload"], "components": document["components"]}
    return jsonschema_rs.validator_for(schema)


class Recorder:
    """Connects to one namespace and keeps every event it receives, in order.

    Strict: every event must be a known `ServerEvent` whose payload is exactly what its model sends, and every
    ack of a known client event must match its ack model (or `Refusal`); anything else is kept in
    `mismatches`, makes `wait_for` fail at once, and fails `check()` (which `close()` and the fixtures call).
    """

    def __init__(self, base_url: str, namespace: str, http_session: aiohttp.ClientSession | None = None) -> None:
        """`http_session` picks how the client connects (the cluster tests bind it to a source address)."""
        self.base_url = base_url
        self.namespace = namespace
        self.client = socketio.AsyncClient(reconnection=False, http_session=http_session)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.log: list[tuple[str, Any]] = []
        self.mismatches: list[str] = []
        self._changed = asyncio.Condition()
        for name in EVENTS:
            self.client.on(name, self._recorder(name), namespace=namespace)
        self.client.on("*", self._unknown, namespace=namespace)

    def _recorder(self, name: str) -> Callable[[Any], Any]:
        async def record(data: Any) -> None:
            problem = mismatch(MODELS[name], data, lambda event: event.wire())
            if problem is not None:
                self.mismatches.append(f"{name}: {problem}")
            self.events[name].append(data)
            self.log.append((name, data))
            async with self._changed:
                self._changed.notify_all()

        return record

    async def _unknown(self, name: str, *data: Any) -> None:
        self.mismatches.append(f"{name}: not a modelled server event ({data!r})")
        async with self._changed:
            self._changed.notify_all()

    def check(self) -> None:
        """Fail if anything received did not match its model."""
        assert not self.mismatches, "\n".join(self.mismatches)

    async def connect(self, token: str | None, *, transports: list[str] | None = None, how: str = "auth") -> None:
        """Connect, passing the token the way `how` says: auth, query or header."""
        url, auth, headers = self.base_url, None, {}
        if token is not None and how == "auth":
            auth = {"token": token}
        elif token is not None and how == "query":
            url = f"{url}?token={token}"
        elif token is not None and how == "header":
            headers = {"Authorization": f"Bearer {token}"}
        await self.client.connect(
            url,
            namespaces=[self.namespace],
            auth=auth,
            headers=headers,
            transports=transports or ["websocket"],
            wait_timeout=10,
        )

    async def call(self, event: str, data: Any = None, seconds: float = 10) -> Any:
        """Emit with an ack and return the ack (checked against the event's ack model, or `Refusal`)."""
        ack = await self.client.call(event, data, namespace=self.namespace, timeout=seconds)
        refused = isinstance(ack, dict) and ack.get("ok") is False
        model = Refusal if refused else ACKS.get(event)
        problem = None if model is None else mismatch(model, ack, _dump)
        if problem is not None:
            self.mismatches.append(f"ack of {event}: {problem}")
        return ack

    async def emit(self, event: str, data: Any = None) -> None:
        await self.client.emit(event, data, namespace=self.namespace)

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 20) -> None:
        """Wait until `predicate()` holds for what was recorded."""
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: bool(self.mismatches) or predicate())
        self.check()

    async def first(self, event: str, seconds: float = 20) -> dict[str, Any]:
        """The first `event` received, once it arrives."""
        await self.wait_for(lambda: bool(self.events[event]), seconds)
        return dict(self.events[event][0])

    async def response_for(self, message_id: str, seconds: float = 30) -> dict[str, Any]:
        """The `assistant_response` of an answer, once it arrives."""
        await self.wait_for(
            lambda: any(r["message_id"] == message_id for r in self.events["assistant_response"]), seconds
        )
        return next(r for r in self.events["assistant_response"] if r["message_id"] == message_id)

    def tokens(self, message_id: str) -> list[dict[str, Any]]:
        return [t for t in self.events["assistant_token"] if t["message_id"] == message_id]

    async def close(self) -> None:
        await self.client.disconnect()
        self.check()


class Connect(Protocol):
    """The `connect` fixture: a connected Recorder on `/chat/<session_id>`, closed when the test ends."""

    async def __call__(
        self, session_id: str, token: str | None, *, transports: list[str] | None = None, how: str = "auth"
    ) -> Recorder: ...


class ConnectTo(Protocol):
    """The `connect_to` fixture: like `connect`, on the server at `base_url` (a node of several)."""

    async def __call__(
        self,
        base_url: str,
        session_id: str,
        token: str | None,
        *,
        transports: list[str] | None = None,
        how: str = "auth",
    ) -> Recorder: ...
