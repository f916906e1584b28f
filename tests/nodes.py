"""Parley server processes for tests: real `python run.py serve` on loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import ClientSession

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    url: str
    process: asyncio.subprocess.Process
    log_path: Path

    async def stop(self, sig: int = signal.SIGTERM, seconds: float = 30) -> int:
        """Signal the process and wait for it to exit; returns its exit code."""
        if self.process.returncode is None:
            self.process.send_signal(sig)
            try:
                await asyncio.wait_for(self.process.wait(), seconds)
            except TimeoutError:
                spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
                if spy:  # show where it hangs
                    dump = await asyncio.create_subprocess_exec(
                        spy, "dump", "--pid", str(self.process.pid), stdout=asyncio.subprocess.PIPE
                    )
                    out, _ = await dump.communicate()
                    self.log_path.write_text(self.log() + "\n" + out.decode())
                self.process.kill()
                await self.process.wait()
                raise AssertionError(f"{self.url} did not exit {seconds}s after signal {sig}:\n{self.log()}") from None
        return int(self.process.returncode or 0)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def start_node(env: dict[str, str], log_dir: Path, http: ClientSession, name: str) -> Node:
    """Start a node with `env` on top of ours and wait until /readyz says ready."""
    port = free_port()
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "run.py"),
            "serve",
            "--port",
            str(port),
            cwd=str(ROOT),
            env={**os.environ, **env, "PARLEY_DATA_DIR": str(log_dir / name)},
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    node = Node(f"http://127.0.0.1:{port}", process, log_path)
    for _ in range(200):
        if process.returncode is not None:
            raise RuntimeError(f"node {name} exited:\n{node.log()}")
        try:
            async with http.get(f"{node.url}/readyz") as response:
                if response.status == 200:
                    return node
        except OSError:
            pass
        await asyncio.sleep(0.1)
    await node.stop(signal.SIGKILL)
    raise RuntimeError(f"node {name} never became ready:\n{node.log()}")


@contextlib.asynccontextmanager
async def running_nodes(
    env: dict[str, str], log_dir: Path, http: ClientSession, name: str = "node", count: int = 2
) -> AsyncIterator[list[Node]]:
    """`count` nodes with `env` (`<name>0`, `<name>1`, … in `log_dir`), stopped on the way out."""
    nodes = list(await asyncio.gather(*(start_node(env, log_dir, http, f"{name}{i}") for i in range(count))))
    try:
        yield nodes
    finally:
        for node in nodes:
            await node.stop()
