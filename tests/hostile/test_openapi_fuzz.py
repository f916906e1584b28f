"""Schemathesis against /api/v1/openapi.json: no 5xx, and every answer matches the documented schema.

Every operation gets `MAX_EXAMPLES` valid (positive) and `MAX_EXAMPLES` invalid (negative) cases, once
with generated path ids and once with ids of the caller's own session, message and document (so the
handlers past the ownership check are reached too). Each backend runs it: PostgreSQL refuses what
SQLite takes (NUL characters, huge integers).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api import Api
from tests.attach import attach

#: per operation, per generation mode, per pass (generated ids / real ids); both backends
MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: logging out, then erasing the account, end every later call with 401 (documented), so they go last
LAST = (("POST", "/api/v1/users/logout"), ("DELETE", "/api/v1/users/me"))


def _well_formed_429(response: Any) -> None:
    """A 429, wherever it comes from, is the standard error with a Retry-After that agrees with it."""
    body = response.json()
    assert body["error"]["code"] == "rate_limited", body
    headers = {name.lower(): value for name, value in response.headers.items()}
    retry_after = headers["retry-after"]  # schemathesis keeps a list per header
    retry_after = retry_after[0] if isinstance(retry_after, list) else retry_after
    assert int(retry_after) == body["error"]["details"]["retry_after"] >= 1


def _fuzz(base: str, token: str, ids: dict[str, str]) -> tuple[list[str], dict[int, int]]:
    """Run every operation; the failures found (one report per operation and pass) and the status counts."""
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results  # the document itself is valid
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    operations.sort(key=lambda op: LAST.index(key) + 1 if (key := (op.method.upper(), op.path)) in LAST else 0)
    failures: list[str] = []
    statuses: dict[int, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    with requests.Session() as http:
        for operation in operations:
            names = {p.name for p in operation.path_parameters}
            passes: list[dict[str, str] | None] = [None]
            if names:
                passes.append({name: ids[name] for name in names})
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for path_parameters in passes:
                    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

                    @hypothesis_settings(
                        max_examples=MAX_EXAMPLES,
                        deadline=None,
                        database=None,
                        derandomize=True,
                        phases=[Phase.explicit, Phase.generate, Phase.shrink],
                        suppress_health_check=list(HealthCheck),
                    )
                    @given(case=strategy)
                    def check(case: schemathesis.Case) -> None:
                        response = case.call_and_validate(base_url=base, session=http, headers=headers, checks=CHECKS)
                        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                        if response.status_code == 429:
                            _well_formed_429(response)

                    try:
                        check()
                    except Unsatisfiable:  # nothing of this operation can be made invalid (no parameters)
                        continue
                    except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports a group
                        label = f"{operation.method.upper()} {operation.path} [{mode.value}, ids={path_parameters}]"
                        failures.append(f"{label}:\n{exc}")
                        print(f"FAILED {label}: {str(exc).splitlines()[0]}")
    return failures, statuses


@pytest.mark.timeout(600)
async def test_every_operation_survives_schemathesis(hostile_api: Api, hostile_server: TestServer) -> None:
    alice = await hostile_api.register()
    session = await hostile_api.new_session(alice, title="fuzzed")
    message = await hostile_api.post_message(alice, session["id"], "a message to fuzz")
    assert message.status == 201, message.body
    document = await hostile_api.upload(alice, "notes.txt", b"Parley fuzz notes: the sky is blue.")
    assert document.status == 202, document.body
    _, attached, _, _ = await attach(hostile_server.app, alice, session["id"], b"# Notes\n", "notes.md", "read")
    ids = {
        "session_id": session["id"],
        "message_id": message.body["id"],
        "document_id": document.body["id"],
        "attachment_id": str(attached.id),
        "user_id": alice.id,
    }
    failures, statuses = await asyncio.to_thread(_fuzz, hostile_api.base, alice.token, ids)
    print(f"\nschemathesis statuses: {dict(sorted(statuses.items()))}")
    assert not failures, "\n\n".join(failures)


def _login_until_limited(base: str, username: str) -> list[int]:
    """Wrong passwords for one username until the limit answers; each answer checked against the schema."""
    schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
    login = schema["/api/v1/users/login"]["POST"]
    statuses: list[int] = []
    with requests.Session() as http:
        for _ in range(20):
            case = login.Case(body={"username": username, "password": "not the password"})
            response = case.call_and_validate(base_url=base, session=http, checks=CHECKS)
            statuses.append(response.status_code)
            if response.status_code == 429:
                _well_formed_429(response)
                break
    return statuses


async def test_a_rate_limited_answer_matches_the_schema(hostile_api: Api) -> None:
    """The fuzzers run without per-minute limits; the failed-login limit still answers a documented 429."""
    alice = await hostile_api.register()
    statuses = await asyncio.to_thread(_login_until_limited, hostile_api.base, alice.username)
    assert statuses == [401] * 10 + [429], statuses
