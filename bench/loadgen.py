"""The load generator, run as its own process so it never shares an event loop with a server.

It reads one JSON spec line on stdin and writes JSON lines on stdout; the last one has `"done": true`.
Modes: `ack` (each client sends `user_message` and awaits its ack, in a loop), `fanout` (senders post,
every client counts `message_created` and its lag), `stream` (one client asks, every client counts
`assistant_token` packets), `connect` (open idle sockets in stages; after each stage print it and wait
for a `next` line).

    echo '{"mode": "ack", ...}' | python -m bench.loadgen
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.sio_client import SioClient

MAX_MESSAGES_PER_CLIENT = 1_000_000  # a count bound on top of the time bound
STAGE_WAIT_SECONDS = 300.0


def _out(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _session(limit: int = 0) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))


async def _connect_all(
    http: aiohttp.ClientSession, targets: list[dict[str, Any]], concurrency: int = 50, handlers: Any = None
) -> tuple[list[SioClient], int]:
    """Connect every target (`{url, namespace, token}`), `concurrency` at a time; (clients, errors)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(target: dict[str, Any], index: int) -> SioClient | None:
        async with gate:
            try:
                extra = handlers(index) if handlers else None
                auth = {"token": target["token"]} if target.get("token") else None
                return await SioClient.connect(http, target["url"], target["namespace"], auth, handlers=extra)
            except Exception:
                return None

    results = await asyncio.gather(*(one(t, i) for i, t in enumerate(targets)))
    clients = [c for c in results if c is not None]
    return clients, len(results) - len(clients)


async def _close_all(clients: list[SioClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


@dataclass
class _Window:
    """The measured window: `warmup` seconds after `start`, until `end`."""

    start: float
    warmup: float
    duration: float

    @property
    def opens(self) -> float:
        return self.start + self.warmup

    @property
    def end(self) -> float:
        return self.start + self.warmup + self.duration

    def inside(self, moment: float) -> bool:
        return self.opens <= moment < self.end

    def second(self, moment: float) -> int:
        return int(moment - self.start)


@dataclass
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)
    timeline: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    count: int = 0

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def add(self, window: _Window, moment: float, latency_ms: float) -> None:
        second = window.second(moment)
        self.timeline[second] = self.timeline.get(second, 0) + 1
        if window.inside(moment):
            self.count += 1
            self.latencies_ms.append(latency_ms)

    def result(self) -> dict[str, Any]:
        span = max(self.timeline, default=-1) + 1
        return {
            "count": self.count,
            "latencies_ms": self.latencies_ms,
            "timeline": [self.timeline.get(s, 0) for s in range(span)],
            "errors": self.errors,
        }


async def _send_loop(client: SioClient, window: _Window, tally: _Tally, content: Any) -> None:
    """Send `user_message` and await its ack until the window ends (and at most a million times)."""
    for _ in range(MAX_MESSAGES_PER_CLIENT):
        sent = time.time()
        if sent >= window.end:
            return
        text = content if isinstance(content, str) else f"{sent:.6f}"
        try:
            ack = await client.call("user_message", {"content": text}, seconds=10)
        except (TimeoutError, ConnectionError) as exc:
            tally.error(type(exc).__name__)
            if client.closed.is_set():
                return
            continue
        now = time.time()
        if not (isinstance(ack, dict) and ack.get("ok")):
            code = ack.get("error", {}).get("code", "refused") if isinstance(ack, dict) else "bad_ack"
            tally.error(str(code))
            await asyncio.sleep(0.01)
            continue
        tally.add(window, now, (now - sent) * 1000)


async def run_ack(spec: dict[str, Any]) -> dict[str, Any]:
    """Every client sends and awaits its ack in a loop for warmup + duration seconds."""
    async with _session() as http:
        clients, failed = await _connect_all(http, spec["targets"])
        window = _Window(time.time(), spec["warmup"], spec["duration"])
        tally = _Tally()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(_send_loop(c, window, tally, spec.get("content", "hello")) for c in clients)),
                spec["warmup"] + spec["duration"] + 15,
            )
        finally:
            await _close_all(clients)
    return {"clients": len(clients), "connect_errors": failed, "seconds": spec["duration"], **tally.result()}


async def run_fanout(spec: dict[str, Any]) -> dict[str, Any]:
    """Senders post timestamped messages; every client records `message_created` deliveries and their lag."""
    start = time.time() + 1e6  # set for real once everyone is connected
    window = _Window(start, spec["warmup"], spec["duration"])
    deliveries = _Tally()

    def on_created(data: Any, received: float) -> None:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            sent = float(data["message"]["content"])
            deliveries.add(window, received, (received - sent) * 1000)

    targets = spec["targets"]
    async with _session() as http:
        clients, failed = await _connect_all(http, targets, handlers=lambda _i: {"message_created": on_created})
        senders = clients[: spec["senders"]]
        window.start = time.time()
        acks = _Tally()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(_send_loop(c, window, acks, None) for c in senders)),
                spec["warmup"] + spec["duration"] + 15,
            )
            await asyncio.sleep(spec.get("drain", 1.0))
        finally:
            await _close_all(clients)
    result = deliveries.result()
    return {
        "clients": len(clients),
        "connect_errors": failed,
        "seconds": spec["duration"],
        "deliveries": result["count"],
        "lag_ms": result["latencies_ms"],
        "timeline": result["timeline"],
        "sent": acks.count,
        "ack_ms": acks.latencies_ms,
        "errors": acks.errors,
    }


@dataclass
class _Answer:
    first: float = 0.0
    last: float = 0.0
    packets: int = 0
    chars: int = 0
    gaps_ms: list[float] = field(default_factory=list)


async def run_stream(spec: dict[str, Any]) -> dict[str, Any]:
    """Client 0 asks `answers` questions one after another; every client tallies each answer's packets."""
    listeners: list[dict[str, _Answer]] = [{} for _ in range(spec["clients"])]
    finished: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    def handlers(index: int) -> dict[str, Any]:
        answers = listeners[index]

        def on_token(data: Any, received: float) -> None:
            answer = answers.setdefault(data["message_id"], _Answer(first=received))
            if answer.packets:
                answer.gaps_ms.append((received - answer.last) * 1000)
            answer.packets += 1
            answer.chars += len(data["delta"])
            answer.last = received

        def on_response(data: Any, received: float) -> None:
            if index == 0:
                finished.put_nowait((str(data["message_id"]), received))

        return {"assistant_token": on_token, "assistant_response": on_response}

    target = {"url": spec["url"], "namespace": spec["namespace"], "token": spec["token"]}
    asked: list[tuple[str, float, float]] = []
    errors: dict[str, int] = {}
    async with _session() as http:
        clients, failed = await _connect_all(http, [target] * spec["clients"], handlers=handlers)
        deadline = time.time() + spec["duration"]
        try:
            for _ in range(spec["answers"]):
                if time.time() >= deadline or not clients:
                    break
                sent = time.time()
                ack = await clients[0].call("user_message", {"content": f"question {uuid.uuid4().hex}"}, seconds=30)
                if not (isinstance(ack, dict) and ack.get("ok")):
                    code = str(ack.get("error", {}).get("code")) if isinstance(ack, dict) else "bad_ack"
                    errors[code] = errors.get(code, 0) + 1
                    await asyncio.sleep(0.05)
                    continue
                message_id, ended = await asyncio.wait_for(finished.get(), 60)
                asked.append((message_id, sent, ended))
            await asyncio.sleep(0.2)  # late packets of the other clients
        finally:
            await _close_all(clients)
    rows = []
    for message_id, sent, ended in asked:
        for index, answers in enumerate(listeners):
            answer = answers.get(message_id)
            if answer is None:
                continue
            rows.append(
                {
                    "client": index,
                    "sent": sent,
                    "ended": ended,
                    "first": answer.first,
                    "last": answer.last,
                    "packets": answer.packets,
                    "chars": answer.chars,
                    "gaps_ms": answer.gaps_ms,
                }
            )
    return {"clients": len(clients), "connect_errors": failed, "answers": len(asked), "rows": rows, "errors": errors}


async def run_connect(spec: dict[str, Any], lines: asyncio.StreamReader) -> dict[str, Any]:
    """Open idle sockets up to each stage's count, report the stage, wait for `next`."""
    held: list[SioClient] = []
    targets = spec["targets"]
    async with _session() as http:
        try:
            for stage in spec["stages"]:
                wanted = targets[len(held) : stage]
                started = time.perf_counter()
                clients, failed = await asyncio.wait_for(
                    _connect_all(http, wanted, spec.get("concurrency", 100)), spec.get("stage_timeout", 180)
                )
                seconds = time.perf_counter() - started
                held.extend(clients)
                await asyncio.sleep(spec.get("settle", 1.0))
                alive = sum(1 for c in held if not c.closed.is_set())
                _out({"stage": stage, "new": len(clients), "errors": failed, "seconds": seconds, "alive": alive})
                if not await asyncio.wait_for(lines.readline(), STAGE_WAIT_SECONDS):
                    break
        finally:
            started = time.perf_counter()
            await _close_all(held)
    return {"held": len(held), "close_seconds": time.perf_counter() - started}


async def main() -> None:
    _raise_nofile()
    loop = asyncio.get_running_loop()
    lines = asyncio.StreamReader(limit=256 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(lines), sys.stdin)
    spec = json.loads(await lines.readline())
    runners: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "ack": lambda: run_ack(spec),
        "fanout": lambda: run_fanout(spec),
        "stream": lambda: run_stream(spec),
        "connect": lambda: run_connect(spec, lines),
    }
    if spec["mode"] not in runners:
        raise SystemExit(f"unknown mode {spec['mode']!r}")
    _out({"done": True, **await runners[spec["mode"]]()})


if __name__ == "__main__":
    asyncio.run(main())
