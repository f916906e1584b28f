"""Run the load generator (`bench.loadgen`) as a child process and collect its JSON lines."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bench.procs import ROOT

StageHook = Callable[[dict[str, Any]], Awaitable[None]]


async def loadgen(spec: dict[str, Any], seconds: float, on_stage: StageHook | None = None) -> dict[str, Any]:
    """Run one generator with `spec`; `on_stage` sees each stage line of the `connect` mode before `next`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        cwd=str(ROOT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=256 * 1024 * 1024,
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    process.stdin.write((json.dumps(spec) + "\n").encode())
    await process.stdin.drain()
    try:
        async with asyncio.timeout(seconds):
            for _ in range(1000):  # stage lines, then the final one
                raw = await process.stdout.readline()
                if not raw:
                    break
                line = json.loads(raw)
                if line.get("done"):
                    await process.wait()
                    return dict(line)
                if on_stage is not None:
                    await on_stage(line)
                process.stdin.write(b"next\n")
                await process.stdin.drain()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    errors = (await process.stderr.read()).decode(errors="replace")[-3000:]
    raise RuntimeError(f"load generator ended without a result:\n{errors}")
