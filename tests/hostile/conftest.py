"""Fixtures of the hostile-input suite: a server with the rate limits a fuzzer would trip turned off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from typing import Any, TypeVar

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from core.settings import Settings
from tests.api import Api
from tests.helpers import start_app

T = TypeVar("T")


def unlimited(settings: Settings) -> Settings:
    """`settings` without the per-minute limits (fuzzers send hundreds of requests a minute from one address).

    The failed-login limit per username stays on, so a fuzzer that repeats a username still meets a 429.
    """
    return replace(
        settings,
        rest_per_minute=0,
        rest_per_minute_ip=0,
        connects_per_minute=0,
        connects_per_minute_ip=0,
        messages_per_minute=0,
        messages_per_minute_ip=0,
        socket_events_per_minute=0,
        socket_events_per_minute_ip=0,
        login_failures_per_ip=0,
    )


@pytest.fixture
def hostile_settings(chat_settings: Settings) -> Settings:
    """Answers from the local Groq, on SQLite or PostgreSQL, without per-minute limits."""
    return unlimited(chat_settings)


@pytest.fixture
async def hostile_server(hostile_settings: Settings) -> AsyncIterator[TestServer]:
    test_server = await start_app(hostile_settings)
    yield test_server
    await test_server.close()


@pytest.fixture
def hostile_api(hostile_server: TestServer, http: ClientSession) -> Api:
    return Api(str(hostile_server.make_url("")), http)


def on_loop(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, T]], T]:
    """From a worker thread (where hypothesis runs), run a coroutine on the test's loop and wait for it."""

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    return run
