"""Profile a Parley node under scenario 1's ack load with py-spy (a flame graph, and a top-functions text
summary in speedscope-free form).

    python -m bench.profile [--database postgres|sqlite] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from bench.cluster import account, parley
from bench.context import Context
from bench.report import RESULTS
from bench.scenarios.ack import CLIENTS, drive


async def _profile(database: str, seconds: float) -> Path:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    out = RESULTS / f"profile-ack-{database}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parley-profile-") as folder:
        ctx = Context(Path(folder), RESULTS, quick=True)
        async with parley(ctx.log_dir, database) as cluster:
            token, _, sessions = await account(cluster.url, f"prof_{database}", CLIENTS)
            targets = [{"url": cluster.url, "namespace": f"/chat/{s}", "token": token} for s in sessions]
            argv = [spy, "record", "--pid", str(cluster.nodes[0].pid), "--duration", str(int(seconds))]
            argv += ["--format", "raw", "--output", str(out), "--nonblocking", "--rate", "250"]
            record = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL)
            await drive(ctx, targets)
            await asyncio.wait_for(record.wait(), seconds + 30)
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
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--seconds", type=float, default=6)
    args = parser.parse_args()
    path = asyncio.run(_profile(args.database, args.seconds))
    print(summarize(path))


if __name__ == "__main__":
    main()
