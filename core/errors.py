"""A refusal with a stable code, raised below the entry points and mapped once at each edge."""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """The request is refused: `code` is stable, `status` is what REST answers, `details` say where or why,
    `retry_after` (seconds) when trying again later will work."""

    def __init__(
        self, code: str, message: str, status: int = 422, details: Any = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.details = code, message, status, details
        self.retry_after = retry_after
