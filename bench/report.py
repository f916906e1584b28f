"""Percentiles, the printed table, `bench/results/<scenario>.json` and its PNG chart."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parent / "results"
PERCENTILES = (50, 90, 99)


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no samples."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine() -> dict[str, Any]:
    """What the numbers ran on."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_kib = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory_kib = int(meminfo.read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "note": "load generators, servers, PostgreSQL and Redis share these cores on loopback",
    }


def revision() -> dict[str, str]:
    """Which Parley tree the servers ran: its path, and its git commit (with `+dirty`) when it has one."""
    from bench.procs import PARLEY_ROOT

    try:
        commit = subprocess.run(
            ["git", "-C", str(PARLEY_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(PARLEY_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    commit = commit or os.environ.get("BENCH_PARLEY_COMMIT", "")
    return {"parley_tree": str(PARLEY_ROOT), "commit": (commit or "unknown") + ("+dirty" if dirty else "")}


@dataclass
class Table:
    """Rows of one scenario; the first column names the row."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)

    def add(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def render(self) -> str:
        cells = [[_fmt(c) for c in row] for row in self.rows]
        widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(self.columns)]
        line = "| " + " | ".join(h.ljust(w) for h, w in zip(self.columns, widths, strict=True)) + " |"
        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        body = [
            "| "
            + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            + " |"
            for r in cells
        ]
        return "\n".join([f"**{self.title}**", "", line, rule, *body])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass
class Result:
    """A scenario's tables, target verdicts, notes and raw data."""

    scenario: str
    tables: list[Table] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def target(self, name: str, measured: float, goal: str, met: bool) -> None:
        self.targets.append({"target": name, "measured": measured, "goal": goal, "met": met})

    def render(self) -> str:
        parts = [t.render() for t in self.tables]
        if self.targets:
            verdicts = Table("Targets", ["target", "measured", "goal", "met"])
            for t in self.targets:
                verdicts.add(t["target"], t["measured"], t["goal"], "yes" if t["met"] else "**no**")
            parts.append(verdicts.render())
        parts += [f"- {n}" for n in self.notes]
        return "\n\n".join(parts)

    def save(self, directory: Path = RESULTS) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.scenario}.json"
        document = {
            "scenario": self.scenario,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
            "parley": revision(),
            "tables": [{"title": t.title, "columns": t.columns, "rows": t.rows} for t in self.tables],
            "targets": self.targets,
            "notes": self.notes,
            "data": self.data,
        }
        path.write_text(json.dumps(document, indent=1, default=str))
        (directory / f"{self.scenario}.md").write_text(self.render() + "\n")
        return path


def latency_chart(path: Path, title: str, series: dict[str, Sequence[float]], unit: str = "ms") -> None:
    """Bars of p50/p90/p99 for each named latency series."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = list(series)
    width = 0.8 / len(PERCENTILES)
    for offset, pct in enumerate(PERCENTILES):
        values = [percentile(series[n], pct) for n in names]
        xs = [i + offset * width for i in range(len(names))]
        ax.bar(xs, values, width, label=f"p{pct}")
    ax.set_xticks([i + width for i in range(len(names))], names, rotation=10, fontsize=8)
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def timeline_chart(path: Path, title: str, series: dict[str, Sequence[float]], unit: str) -> None:
    """One line per named per-second series."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in series.items():
        ax.plot(range(len(values)), values, label=name, marker=".")
    ax.set_xlabel("second")
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def bar_chart(path: Path, title: str, values: dict[str, float], unit: str) -> None:
    """One bar per named value."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.bar(list(values), list(values.values()))
    ax.set_ylabel(unit)
    ax.set_title(title)
    plt.setp(ax.get_xticklabels(), rotation=10, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
