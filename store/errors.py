"""Errors the store raises; each carries a stable `code` the API layers pass on."""

from __future__ import annotations


class StoreError(Exception):
    """Base class: `code` is stable and machine-readable, the message is for people."""

    code = "store_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(StoreError):
    """The row does not exist, or the caller may not know that it does."""

    code = "not_found"


class Conflict(StoreError):
    """The change clashes with existing state (a taken username, an archived session…)."""

    code = "conflict"


class Forbidden(StoreError):
    """The caller may see the row but not change it this way."""

    code = "forbidden"
