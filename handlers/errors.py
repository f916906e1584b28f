"""Refusing a socket event: a stable code, a message, and optional details."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from core.errors import Refused
from store.types import unstorable_text


class EventError(Refused):
    """An event is refused: the client gets `error {code, message}` and a failed ack."""

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(code, message, details=details)


def parse(model: type[BaseModel], data: Any) -> Any:
    """`data` validated as `model`, or `EventError(invalid_payload)` saying where it is wrong."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EventError("invalid_payload", f"the payload must be an object, got {type(data).__name__}")
    loc = unstorable_text(data)
    if loc is not None:
        message = "text must not contain NUL characters or unpaired surrogates"
        raise EventError("invalid_payload", "the payload is invalid", [{"loc": loc, "msg": message}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False, include_input=False)]
        raise EventError("invalid_payload", "the payload is invalid", details) from exc
