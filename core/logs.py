"""Structured logs: JSON lines carrying the request or event id, the user id and the session id.

The ids live in context variables, set by the HTTP middleware and the socket event dispatcher, so
every log call made while serving a request carries them without passing them around.
"""

from __future__ import annotations

import logging
import random
import re
import sys
from contextvars import ContextVar
from typing import Any, TextIO

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
USER_ID: ContextVar[str | None] = ContextVar("user_id", default=None)
SESSION_ID: ContextVar[str | None] = ContextVar("session_id", default=None)

#: query parameters whose values never reach a log line
_SECRET_QUERY = re.compile(r"(?i)\b(token|access_token|password|api_key)=[^&\s]*")


def new_request_id() -> str:
    """16 hex digits to tell one request's log lines from another's (not a secret: no system entropy per event)."""
    return f"{random.getrandbits(64):016x}"


def bind(*, request_id: str | None = None, user_id: object = None, session_id: object = None) -> None:
    """Attach ids to everything logged from here on in this task."""
    if request_id is not None:
        REQUEST_ID.set(request_id)
    if user_id is not None:
        USER_ID.set(str(user_id))
    if session_id is not None:
        SESSION_ID.set(str(session_id))


def redact(text: str) -> str:
    """`text` with secret query-parameter values replaced."""
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=[redacted]", text)


class ContextFilter(logging.Filter):
    """Copies the context ids onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.user_id = USER_ID.get()
        record.session_id = SESSION_ID.get()
        return True


class AccessLogger(AbstractAccessLogger):
    """One line per HTTP request, with the ids, and without tokens from query strings."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s",
            request.method,
            redact(request.path_qs),
            response.status,
            extra={
                "remote": request.remote,
                "status": response.status,
                "duration_ms": round(time * 1000, 1),
                "response_bytes": response.body_length,
            },
        )


def build_handler(stream: TextIO, fmt: str) -> logging.Handler:
    """A handler writing JSON lines (`json`) or readable text (`text`) with the context ids."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s %(session_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    else:
        formatter = logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s user=%(user_id)s session=%(session_id)s]: %(message)s"
        )
    handler.setFormatter(formatter)
    return handler


def configure(level: str, fmt: str) -> None:
    """Root logging for a Parley process, on stderr."""
    root = logging.getLogger()
    root.handlers[:] = [build_handler(sys.stderr, fmt)]
    root.setLevel(level)


def access_log_options() -> dict[str, Any]:
    """Keyword arguments for `web.run_app`/`AppRunner` so access lines go through our logger."""
    return {"access_log_class": AccessLogger}
