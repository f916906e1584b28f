"""Socket event payloads are validated strictly: unknown fields, wrong types and blank text are refused."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from turns.wire import DeleteIn, EditIn, StopIn, SyncIn, TypingIn, UserMessageIn


@pytest.mark.parametrize(
    ("model", "payload"),
    [
        (UserMessageIn, {"content": "hello", "client_id": "c-1"}),
        (UserMessageIn, {"content": "hello", "content_type": "text"}),
        (UserMessageIn, {"file": b"%PDF-", "filename": "a.pdf", "mime_type": "application/pdf"}),
        (UserMessageIn, {"content": "what is it?", "file": b"%PDF-", "filename": "a.pdf"}),
        (TypingIn, {"is_typing": False}),
        (StopIn, {}),
        (StopIn, {"message_id": str(uuid.uuid4())}),
        (EditIn, {"message_id": str(uuid.uuid4()), "content": "better"}),
        (DeleteIn, {"message_id": str(uuid.uuid4())}),
        (SyncIn, {"after_message_id": str(uuid.uuid4()), "last_seq": 3}),
    ],
)
def test_well_formed_payloads_pass(model: type[BaseModel], payload: dict[str, Any]) -> None:
    assert model.model_validate(payload).model_dump(exclude_unset=True).keys() == payload.keys()


@pytest.mark.parametrize(
    ("model", "payload", "where"),
    [
        (UserMessageIn, {}, "content"),
        (UserMessageIn, {"content": "   \n"}, "content"),
        (UserMessageIn, {"content": 42}, "content"),
        (UserMessageIn, {"content": "hi", "content_type": "audio"}, "content_type"),
        (UserMessageIn, {"content": "hi", "client_id": "x" * 65}, "client_id"),
        (UserMessageIn, {"content": "hi", "admin": True}, "admin"),
        (UserMessageIn, {"content": "hi", "file": b"%PDF-"}, "filename"),
        (UserMessageIn, {"content": "hi", "filename": "a.pdf"}, "filename"),
        (UserMessageIn, {"content": "hi", "mime_type": "text/plain"}, "mime_type"),
        (UserMessageIn, {"file": "not bytes", "filename": "a.pdf", "content": "x"}, "file"),
        (TypingIn, {"is_typing": "true"}, "is_typing"),
        (EditIn, {"message_id": "not-a-uuid", "content": "x"}, "message_id"),
        (DeleteIn, {}, "message_id"),
        (SyncIn, {"last_seq": -1}, "last_seq"),
        (SyncIn, {"last_seq": "3"}, "last_seq"),
    ],
)
def test_malformed_payloads_are_refused_naming_the_field(
    model: type[BaseModel], payload: dict[str, Any], where: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(payload)
    assert [error["loc"][0] for error in refused.value.errors()] == [where]
