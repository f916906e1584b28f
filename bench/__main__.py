"""`python -m bench [scenario ...] [--quick]`: run scenarios, print their tables, write bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import resource
import shutil
import tempfile
import time
from pathlib import Path
from types import MappingProxyType

from bench.context import Context
from bench.report import RESULTS, machine, revision

#: run order (issue 9 numbering in brackets)
SCENARIOS = MappingProxyType(
    {
        "ack": "bench.scenarios.ack",  # 1
        "stream": "bench.scenarios.stream",  # 2
        "connections": "bench.scenarios.connections",  # 4
        "fanout": "bench.scenarios.fanout",  # 3
        "rag": "bench.scenarios.rag",  # 5
        "speech": "bench.scenarios.speech",  # 6
        "peer": "bench.scenarios.peer",  # 7
        "offline": "bench.scenarios.offline",  # 8 (issue 18)
    }
)


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _main(names: list[str], quick: bool, keep_logs: bool, results: Path) -> int:
    _raise_nofile()  # inherited by the servers and generators we start
    failures = 0
    sections: list[str] = []
    folder = tempfile.mkdtemp(prefix="parley-bench-")
    try:
        ctx = Context(Path(folder), results, quick)
        print(f"machine: {machine()}\nlogs: {folder}\n", flush=True)
        for name in names:
            started = time.monotonic()
            module = importlib.import_module(SCENARIOS[name])
            try:
                result = await module.run(ctx)
            except Exception as exc:  # one broken scenario must not hide the others' numbers
                failures += 1
                print(f"## {name}: FAILED: {exc!r}\n", flush=True)
                sections.append(f"## {name}\n\nFAILED: {exc!r}")
                continue
            path = result.save(ctx.results)
            took = time.monotonic() - started
            print(f"## {name} ({took:.0f} s) -> {path}\n\n{result.render()}\n", flush=True)
            sections.append(f"## {name} ({took:.0f} s)\n\n{result.render()}")
        _summary(results, sections)
    finally:
        if not keep_logs:
            shutil.rmtree(folder, ignore_errors=True)
    return failures


def _summary(results: Path, sections: list[str]) -> None:
    """bench/results/summary.md: this run's tables with the machine and the Parley tree they measured."""
    head = [f"# Parley benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    head += [f"- {key}: {value}" for key, value in {**machine(), **revision()}.items()]
    (results / "summary.md").write_text("\n".join(head) + "\n\n" + "\n\n".join(sections) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "scenarios", nargs="*", metavar="scenario", help=f"any of {', '.join(SCENARIOS)} (default: all, in this order)"
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the suite)")
    parser.add_argument("--keep-logs", action="store_true", help="keep server logs and data directories")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON, Markdown and PNG files go")
    args = parser.parse_args()
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
    names = args.scenarios or list(SCENARIOS)
    args.results.mkdir(parents=True, exist_ok=True)
    raise SystemExit(1 if asyncio.run(_main(names, args.quick, args.keep_logs, args.results)) else 0)


if __name__ == "__main__":
    main()
