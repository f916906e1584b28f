"""What every scenario gets: where to log, where results go, and whether to run the short variant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Context:
    log_dir: Path
    results: Path
    quick: bool = False

    def seconds(self, full: float, quick: float) -> float:
        """A duration for this run's size."""
        return quick if self.quick else full
