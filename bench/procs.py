"""Server processes on loopback for the benchmark: Parley nodes, the echo baseline, the Node peer, the fake
provider; plus the throwaway PostgreSQL database and the Redis database they use."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
#: the Parley tree whose `run.py` is benchmarked: this checkout, or a patched copy (to measure a proposal)
PARLEY_ROOT = Path(os.environ.get("BENCH_PARLEY_ROOT", str(ROOT))).resolve()
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
JWT_SECRET = "bench-secret-" + "x" * 32
READY_SECONDS = 60.0
#: the benchmark measures capacity, so rate limits are off (0 turns a limit off) and audio quotas are large
NO_LIMITS = MappingProxyType(
    {
        "RATE_LIMIT_REST_PER_MINUTE": "0",
        "RATE_LIMIT_REST_PER_MINUTE_IP": "0",
        "RATE_LIMIT_CONNECTS_PER_MINUTE": "0",
        "RATE_LIMIT_CONNECTS_PER_MINUTE_IP": "0",
        "RATE_LIMIT_MESSAGES_PER_MINUTE": "0",
        "RATE_LIMIT_MESSAGES_PER_MINUTE_IP": "0",
        "RATE_LIMIT_SOCKET_EVENTS_PER_MINUTE": "0",
        "RATE_LIMIT_SOCKET_EVENTS_PER_MINUTE_IP": "0",
        "RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE": "100000",
        "RATE_LIMIT_AUDIO_SECONDS_PER_MINUTE_IP": "100000",
    }
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    """A server process we started, its URL and its log."""

    name: str
    url: str
    process: asyncio.subprocess.Process
    log_path: Path
    profiler: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        """Resident set size from /proc, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self, seconds: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `seconds` (a py-spy recorder first gets SIGINT to write its profile)."""
        if self.profiler is not None and self.profiler.returncode is None:
            self.profiler.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.profiler.wait(), 30)
            except TimeoutError:
                self.profiler.kill()
        if self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), seconds)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


async def start(
    name: str,
    argv: list[str],
    env: dict[str, str],
    log_dir: Path,
    port: int,
    ready_path: str = "/health",
    cwd: Path = ROOT,
) -> Proc:
    """Start `argv` in `cwd` and wait until GET `ready_path` answers 200."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=str(cwd), env={**os.environ, **env}, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    proc = Proc(name, f"http://127.0.0.1:{port}", process, log_path)
    async with aiohttp.ClientSession() as http:
        deadline = asyncio.get_running_loop().time() + READY_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{name} exited:\n{proc.log()}")
            with contextlib.suppress(OSError, aiohttp.ClientError):
                async with http.get(proc.url + ready_path) as response:
                    if response.status == 200:
                        return proc
            await asyncio.sleep(0.1)
    await proc.stop(1)
    raise RuntimeError(f"{name} never became ready:\n{proc.log()}")


def parley_env(
    data_dir: Path, database_url: str | None, redis: bool, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a Parley node for the benchmark (answers off unless `extra` turns them on)."""
    env = {
        "PARLEY_DATA_DIR": str(data_dir),
        "JWT_SECRET": JWT_SECRET,
        "AUTO_ANSWER": "false",
        "LOG_LEVEL": "WARNING",
        "JWT_TTL_SECONDS": "7200",
        "LOG_FORMAT": "text",
        **NO_LIMITS,
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis:
        env["REDIS_URL"] = REDIS_URL
    env.update(extra or {})
    return env


async def migrate(env: dict[str, str], log_dir: Path) -> None:
    """`run.py migrate` with `env`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "run.py",
        "migrate",
        cwd=str(PARLEY_ROOT),
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    if process.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{out.decode(errors='replace')}")


async def start_parley(name: str, env: dict[str, str], log_dir: Path, *, storeless: bool = False) -> Proc:
    """`run.py serve` (or, `storeless`, `bench.storeless`: the ack loop's ceiling) on a free port, ready when
    /readyz says so."""
    port = free_port()
    command = ["-m", "bench.storeless"] if storeless else ["run.py", "serve"]
    argv = [sys.executable, *command, "--host", "127.0.0.1", "--port", str(port)]
    node = await start(name, argv, env, log_dir, port, ready_path="/readyz", cwd=PARLEY_ROOT)
    if os.environ.get("BENCH_PROFILE"):  # py-spy samples the node for its whole life
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        out = log_dir / f"{name}.pyspy.txt"
        node.profiler = await asyncio.create_subprocess_exec(
            spy,
            "record",
            "--pid",
            str(node.pid),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    return node


async def start_echo(name: str, log_dir: Path, redis: bool = False) -> Proc:
    """The bare python-socketio echo baseline."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.echo_server", "--port", str(port)]
    if redis:
        argv += ["--redis", REDIS_URL]
    return await start(name, argv, {}, log_dir, port)


async def start_peer(name: str, log_dir: Path) -> Proc:
    """The Node socket.io@4 peer (needs `npm ci` in bench/peer)."""
    port = free_port()
    return await start(name, ["node", "bench/peer/server.js", str(port)], {}, log_dir, port)


async def start_fake_groq(log_dir: Path, tokens: int) -> Proc:
    """The token firehose provider."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.fake_groq", "--port", str(port), "--tokens", str(tokens)]
    return await start("fake-groq", argv, {}, log_dir, port)


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A throwaway database `parley_bench_<hex>`, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"parley_bench_{secrets.token_hex(4)}"
    admin_url = PG_ADMIN.replace("postgresql://", "postgresql+asyncpg://", 1)
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(url: str, statement: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE)."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def flush_redis(attempts: int = 20) -> None:
    """Empty the benchmark's Redis database (waiting up to ~10 s for a Redis that is restarting)."""
    client = Redis.from_url(REDIS_URL)
    try:
        for attempt in range(attempts):
            try:
                await client.flushdb()
                return
            except RedisConnectionError:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await client.aclose()


async def register(http: aiohttp.ClientSession, url: str, username: str) -> tuple[str, str]:
    """A new account: (access token, user id)."""
    body = {"username": username, "password": "bench-password"}
    async with http.post(f"{url}/api/v1/users/register", json=body) as response:
        data = await response.json()
        if response.status != 201:
            raise RuntimeError(f"register: {response.status} {data}")
    return str(data["access_token"]), str(data["user"]["id"])


async def create_sessions(http: aiohttp.ClientSession, url: str, token: str, count: int) -> list[str]:
    """`count` new chat sessions of the token's user."""
    ids = []
    headers = {"Authorization": f"Bearer {token}"}
    for index in range(count):
        body = {"title": f"bench {index}"}
        async with http.post(f"{url}/api/v1/chat/sessions", json=body, headers=headers) as response:
            data = await response.json()
            if response.status != 201:
                raise RuntimeError(f"create session: {response.status} {data}")
            ids.append(str(data["id"]))
    return ids
