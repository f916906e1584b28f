"""Helpers shared by the test modules (the REST client is tests/api.py, the socket client tests/sio.py)."""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp.test_utils import TestServer

from core.settings import Settings, load_jwt_secret
from server.app import create_app
from tests.api import Account, Api
from tests.fakes.groq import GroqFake
from tests.nodes import ROOT
from tests.sio import Recorder

#: the `serve` fixture: Parley for given settings on a real port, closed when the test ends
Serve = Callable[[Settings], Awaitable[TestServer]]


async def eventually(check: Callable[[], object], seconds: float = 10, every: float = 0.02) -> Any:
    """`check()`'s first truthy result (awaited if it is awaitable) within `seconds` (it may raise meanwhile), else
    the last error.

    For state owned by another server or process, which no event announces to the test.
    """
    last: BaseException | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result
        except Exception as exc:
            last = exc
        await asyncio.sleep(every)
    raise AssertionError(f"not true within {seconds} s; last error: {last!r}")


async def start_app(settings: Settings, **options: Any) -> TestServer:
    """Parley for `settings` on a real loopback port (the caller closes it)."""
    test_server = TestServer(create_app(settings), host="127.0.0.1")
    await test_server.start_server(**options)
    return test_server


def with_groq(settings: Settings, groq: GroqFake) -> Settings:
    """`settings` answering through the local Groq with the real `groq` client."""
    return replace(settings, llm_providers=("groq",), groq_api_key="test-key", groq_base_url=groq.url)


async def ask(api: Api, account: Account, session_id: str, question: str) -> dict[str, Any]:
    """One question over a socket of its own; returns the final `assistant_response`."""
    recorder = Recorder(api.base, f"/chat/{session_id}")
    await recorder.connect(account.token)
    try:
        ack = await recorder.call("user_message", {"content": question})
        assert ack["ok"], ack
        await recorder.wait_for(lambda: bool(recorder.events["assistant_response"]))
        return dict(recorder.events["assistant_response"][-1])
    finally:
        await recorder.close()


async def make_admin(settings: Settings, username: str) -> None:
    """`python run.py createuser NAME --admin` against the same database, as an operator would."""
    env = {**os.environ, "DATABASE_URL": settings.database_url, "PARLEY_DATA_DIR": str(settings.data_dir)}
    env["JWT_SECRET"] = load_jwt_secret(settings)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "run.py"),
        "createuser",
        username,
        "--admin",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0 and b"is now an admin" in out, out


def db_id(value: uuid.UUID, dialect: str) -> Any:
    """A UUID as a raw SQL parameter: native on PostgreSQL, hex text on SQLite."""
    return value if dialect == "postgresql" else value.hex
