"""Profile a Parley node with py-spy under scenario 1's ack load, or under scenario 2's answers (one
client asking in a loop, retrieval on 10k chunks, a provider that answers at once): a top-functions summary
from py-spy's collapsed stacks.

    python -m bench.profile [--load ack|stream] [--database postgres|sqlite] [--seconds 8]

With `--load stream`, the functions on the path to the first `assistant_token` (turn start, answer row,
history, query embedding, search, the provider request) are the ones to read.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from bench import procs
from bench.cluster import account, parley
from bench.context import Context
from bench.gen import loadgen
from bench.report import RESULTS
from bench.scenarios import stream
from bench.scenarios.ack import CLIENTS, drive


async def _record(pid: int, out: Path, seconds: float) -> asyncio.subprocess.Process:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    argv = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    argv += ["--format", "raw", "--output", str(out), "--nonblocking", "--rate", "250"]
    return await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL)


async def _ack(ctx: Context, database: str, seconds: float, out: Path) -> None:
    async with parley(ctx.log_dir, database) as cluster:
        token, _, sessions = await account(cluster.url, f"prof_{database}", CLIENTS)
        targets = [{"url": cluster.url, "namespace": f"/chat/{s}", "token": token} for s in sessions]
        record = await _record(cluster.nodes[0].pid, out, seconds)
        await drive(ctx, targets)
        await asyncio.wait_for(record.wait(), seconds + 30)


async def _stream(ctx: Context, database: str, seconds: float, out: Path) -> None:
    provider = await procs.start_fake_groq(ctx.log_dir, 20)  # short answers: the first token is the point
    env = {"AUTO_ANSWER": "true", "LLM_PROVIDERS": "groq", "GROQ_API_KEY": "bench", "GROQ_BASE_URL": provider.url}
    try:
        async with parley(ctx.log_dir, database, env=env, prepare=stream._prepare) as cluster:
            token, sessions = await stream._login_and_sessions(cluster.url, [{"hybrid": True}])
            spec = {"mode": "stream", "url": cluster.url, "namespace": f"/chat/{sessions[0]}", "token": token}
            spec |= {"clients": 1, "answers": 100_000, "duration": seconds}
            record = await _record(cluster.nodes[0].pid, out, seconds)
            await loadgen(spec, seconds=seconds + 60)
            await asyncio.wait_for(record.wait(), seconds + 30)
    finally:
        await provider.stop()


async def _profile(load: str, database: str, seconds: float) -> Path:
    out = RESULTS / f"profile-{load}-{database}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parley-profile-") as folder:
        ctx = Context(Path(folder), RESULTS, quick=True)
        await (_stream if load == "stream" else _ack)(ctx, database, seconds, out)
    return out


def summarize(path: Path, top: int = 30) -> str:
    """Self and inclusive sample counts per function from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    lines = [f"{total} samples", "", "inclusive %  function"]
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * count / total:10.1f}  {frame}")
    lines += ["", "self %  function"]
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * count / total:6.1f}  {frame}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load", choices=["ack", "stream"], default="ack")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--seconds", type=float, default=6)
    args = parser.parse_args()
    path = asyncio.run(_profile(args.load, args.database, args.seconds))
    print(summarize(path))


if __name__ == "__main__":
    main()
