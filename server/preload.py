"""PRELOAD_MODELS: a starting node loads its local models in the background; `/readyz` waits for them."""

from __future__ import annotations

import logging
import time
from collections.abc import Coroutine
from typing import Any, Literal

from core.tasks import TaskSet

log = logging.getLogger(__name__)
State = Literal["loading", "ok", "unavailable"]


class Preloads:
    """The loads a node started as it came up, and how each went."""

    def __init__(self) -> None:
        self._tasks = TaskSet()
        self._states: dict[str, State] = {}

    def start(self, what: str, load: Coroutine[Any, Any, None]) -> None:
        """Run `load` in the background; `what` names the model in logs."""
        self._states[what] = "loading"
        self._tasks.spawn(self._run(what, load), name=f"preload {what}")

    async def _run(self, what: str, load: Coroutine[Any, Any, None]) -> None:
        started = time.perf_counter()
        try:
            await load
        except Exception as exc:  # a missing model file: the node serves, and says so again when it is needed
            log.warning("could not preload the %s: %s", what, exc)
            self._states[what] = "unavailable"
            return
        self._states[what] = "ok"
        log.info("preloaded the %s in %.2f s", what, time.perf_counter() - started)

    def state(self) -> State | None:
        """`loading` while a load runs, then `unavailable` if one failed, else `ok`; None if none was started."""
        states = set(self._states.values())
        if not states:
            return None
        return "loading" if "loading" in states else "unavailable" if "unavailable" in states else "ok"

    async def close(self) -> None:
        """Stop waiting for loads still running (shutdown)."""
        await self._tasks.close()
