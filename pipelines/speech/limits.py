"""Audio seconds per user per minute, in a sliding window (per process; Redis-backed limits come with ops)."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict, deque

WINDOW_SECONDS = 60.0


class AudioBudget:
    """How many seconds of audio each user may send per minute."""

    def __init__(self, seconds_per_minute: float) -> None:
        self.limit = seconds_per_minute
        self._spent: dict[uuid.UUID, deque[tuple[float, float]]] = defaultdict(deque)

    def charge(self, user_id: uuid.UUID, seconds: float, now: float | None = None) -> float | None:
        """Spend `seconds` of the user's budget; returns None, or the seconds to wait when it is spent."""
        now = time.monotonic() if now is None else now
        spent = self._spent[user_id]
        while spent and spent[0][0] <= now - WINDOW_SECONDS:
            spent.popleft()
        used = sum(amount for _, amount in spent)
        if used + seconds > self.limit:
            return max(0.0, spent[0][0] + WINDOW_SECONDS - now) if spent else WINDOW_SECONDS
        spent.append((now, seconds))
        return None
