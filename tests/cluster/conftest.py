"""A real cluster on loopback: nginx (deploy/nginx.conf) in front of Parley nodes sharing PostgreSQL and
Redis. Clients come from distinct 127.x.y.1 source addresses so that ip_hash spreads them over nodes."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.groq import GroqFake
from tests.helpers import eventually
from tests.nodes import ROOT, Node, free_port, start_node
from tests.sio import Recorder

NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def site_config(nodes: list[Node], port: int, folder: Path) -> str:
    """deploy/nginx.conf with its `site:` lines pointed at these nodes, this port and this folder."""
    lines = []
    node_lines_done = False
    for line in NGINX_CONF.read_text().splitlines():
        marker = re.search(r"# site: (\w+)", line)
        if marker is None:
            lines.append(line)
            continue
        kind, indent = marker.group(1), line[: len(line) - len(line.lstrip())]
        if kind == "node":
            if not node_lines_done:
                lines += [f"{indent}server {n.url.removeprefix('http://')} max_fails=1 fail_timeout=5s;" for n in nodes]
                node_lines_done = True
        elif kind == "listen":
            lines.append(f"{indent}listen 127.0.0.1:{port};")
        elif kind == "pid":
            lines.append(f"pid {folder / 'nginx.pid'};")
        elif kind == "error_log":
            lines.append(f"error_log {folder / 'error.log'} warn;")
        elif kind == "access_log":
            lines.append(f"{indent}access_log {folder / 'access.log'};")
        elif kind == "temp":
            directive = line.split()[0]
            lines.append(f"{indent}{directive} {folder / directive.removesuffix('_temp_path')};")
    return "\n".join(lines) + "\n"


@dataclass
class Cluster:
    """The nodes, nginx's URL, and clients bound to source addresses."""

    url: str
    nodes: list[Node]
    http: aiohttp.ClientSession
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)
    recorders: list[Recorder] = field(default_factory=list)

    async def client_session(self, address: str) -> aiohttp.ClientSession:
        """An HTTP session whose connections come from `address` (a 127.0.0.0/8 address)."""
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))
        self.sessions.append(session)
        return session

    async def recorder(self, address: str, session_id: str, token: str, transports: list[str]) -> Recorder:
        """A socket on `/chat/<session_id>` through nginx, from `address`."""
        recorder = Recorder(self.url, f"/chat/{session_id}", http_session=await self.client_session(address))
        await recorder.connect(token, transports=transports)
        self.recorders.append(recorder)
        return recorder

    async def connections(self, node: Node) -> int:
        """How many chat sockets `node` holds (its connection gauge)."""
        async with self.http.get(f"{node.url}/metrics") as response:
            found = re.search(r'parley_socket_connections\{namespace_kind="chat"\} ([0-9.]+)', await response.text())
        return int(float(found.group(1))) if found else 0

    async def node_of(self, recorder: Recorder) -> Node:
        """The node holding the only socket of the cluster."""
        holding = [node for node in self.nodes if node.process.returncode is None and await self.connections(node)]
        assert len(holding) == 1, "node_of needs exactly one connected socket"
        return holding[0]

    async def spread(self, session_id: str, token: str, transports: list[str]) -> tuple[Recorder, Recorder]:
        """Two sockets of one session on two different nodes."""
        first = await self.recorder("127.0.1.1", session_id, token, transports)
        for n in range(2, 40):
            candidate = await self.recorder(f"127.0.{n}.1", session_id, token, transports)
            if [await self.connections(node) for node in self.nodes] == [1, 1]:
                return first, candidate
            await candidate.close()
            self.recorders.remove(candidate)
            await asyncio.sleep(0.2)  # let the node count the disconnect
        raise AssertionError("ip_hash never picked the second node")

    async def close(self) -> None:
        for recorder in self.recorders:
            if recorder.client.connected:
                await recorder.close()
        for session in self.sessions:
            await session.close()


async def run(*command: str) -> str:
    """Run a command to completion; its output, or an error carrying it."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.decode()}")
    return out.decode()


@pytest.fixture
async def cluster_env(postgres_url: str, redis_url: str, groq: GroqFake) -> dict[str, str]:
    """What every node of the cluster shares (settings that must match across nodes)."""
    return {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": "cluster-secret-" + "y" * 24,
        "LLM_PROVIDERS": "groq",
        "GROQ_API_KEY": "test-key",
        "GROQ_BASE_URL": groq.url,
        "TRUST_FORWARDED_FOR": "true",
        "TURN_LEASE_SECONDS": "3",
        "RATE_LIMIT_REST_PER_MINUTE_IP": "0",
        "RATE_LIMIT_CONNECTS_PER_MINUTE": "0",
        "RATE_LIMIT_CONNECTS_PER_MINUTE_IP": "0",
    }


@contextlib.asynccontextmanager
async def running_cluster(env: dict[str, str], http: aiohttp.ClientSession, folder: Path) -> AsyncIterator[Cluster]:
    """Two nodes with `env`, behind nginx started from deploy/nginx.conf."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.fail("nginx is missing: `make test` installs it (scripts/apt-install.sh nginx)")
    nodes = list(await asyncio.gather(*(start_node(env, folder, http, f"node{i}") for i in range(2))))
    proxy_dir = folder / "nginx"
    proxy_dir.mkdir()
    proxy_dir.chmod(0o777)  # nginx workers drop root
    port = free_port()
    conf = proxy_dir / "nginx.conf"
    conf.write_text(site_config(nodes, port, proxy_dir))
    await run(nginx, "-t", "-q", "-c", str(conf), "-p", str(proxy_dir))
    proxy = await asyncio.create_subprocess_exec(nginx, "-c", str(conf), "-p", str(proxy_dir), "-g", "daemon off;")
    cluster = Cluster(f"http://127.0.0.1:{port}", nodes, http)
    try:
        await eventually(lambda: _healthy(http, cluster.url), seconds=10, every=0.1)
        yield cluster
    finally:
        await cluster.close()
        proxy.send_signal(signal.SIGQUIT)
        await proxy.wait()
        for node in nodes:
            if node.process.returncode is None:
                await node.stop()


async def _healthy(http: aiohttp.ClientSession, url: str) -> bool:
    async with http.get(f"{url}/healthz") as response:
        return response.status == 200


@pytest.fixture
async def cluster(cluster_env: dict[str, str], http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[Cluster]:
    """Two nodes behind nginx."""
    async with running_cluster(cluster_env, http, tmp_path) as started:
        yield started
