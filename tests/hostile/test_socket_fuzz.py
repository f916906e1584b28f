"""Hypothesis against every event of the chat namespace: whatever the payload, the server answers with a
failed ack and an `error` event (or a successful ack for a payload that happens to be valid), never crashes,
never answers `internal_error`, and the socket stays connected.

Every event gets `MAX_EXAMPLES` payloads (derandomized, so a run is reproducible): arbitrary JSON values
(NaN and infinities too), binary, several arguments, and objects built from the events' own field names
holding wrong types, random ids, the ids of real messages in the session, and out-of-range numbers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.hostile.conftest import on_loop
from tests.sio import Recorder

MAX_EXAMPLES = 80
EVENTS = (
    "user_message",
    "typing",
    "stop_generation",
    "edit_message",
    "delete_message",
    "sync",
    "audio_start",
    "audio_chunk",
    "audio_end",
    "audio_cancel",
    "tts_request",
)
FIELDS = (
    "content",
    "content_type",
    "client_id",
    "is_typing",
    "message_id",
    "after_message_id",
    "last_seq",
    "sample_rate",
    "format",
    "language",
)
#: names python-socketio keeps for itself (the client refuses to emit them)
RESERVED = {"connect", "connect_error", "disconnect", "message"}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**80)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "\x00", "\ud800", "text", "pcm16", "16000", "-1", "null"])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def payloads(ids: list[str]) -> st.SearchStrategy[Any]:
    """Anything a hostile client can put in one emit."""
    field_values = json_values | st.uuids().map(str) | st.sampled_from(ids) | st.binary(max_size=64)
    objects = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), field_values, max_size=5)
    return st.one_of(
        objects,
        json_values,
        st.binary(max_size=4096),
        st.tuples(json_values, json_values),  # several arguments
    )


def _check_ack(event: str, ack: Any) -> bool:
    """Whether the ack refused the event; fails the test on a malformed ack or an internal error."""
    assert isinstance(ack, dict), (event, ack)
    if ack.get("ok") is True:
        return False
    assert ack.get("ok") is False, (event, ack)
    error = ack["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str), ack
    assert error["event"] == event, ack
    assert error["code"] != "internal_error", ack
    return True


def _fuzz_event(run: Any, recorder: Recorder, events: st.SearchStrategy[str], strategy: st.SearchStrategy[Any]) -> int:
    """Send `MAX_EXAMPLES` payloads; how many were refused."""
    refused = 0

    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(event=events, payload=strategy)
    def check(event: str, payload: Any) -> None:
        nonlocal refused
        if event in ("audio_chunk", "audio_end"):  # reach past `no_utterance`: open one (or keep it open)
            run(recorder.call("audio_start", {}, seconds=60))
        ack = run(recorder.call(event, payload, seconds=60))
        refused += _check_ack(event, ack)
        assert recorder.client.connected, (event, payload)

    check()
    run(recorder.call("audio_cancel", {}))  # no utterance left open for the next event
    return refused


def _fuzz(run: Any, recorder: Recorder, ids: list[str]) -> dict[str, int]:
    strategy = payloads(ids)
    unknown = st.text(min_size=1, max_size=24).filter(lambda name: name not in RESERVED and name not in EVENTS)
    refused = {event: _fuzz_event(run, recorder, st.just(event), strategy) for event in EVENTS}
    refused["<unknown>"] = _fuzz_event(run, recorder, unknown, strategy)
    return refused


@pytest.mark.timeout(600)
async def test_no_event_payload_crashes_the_server(
    hostile_api: Api, groq: GroqFake, hostile_server: TestServer
) -> None:
    groq.script.tokens = ["fine."]
    alice = await hostile_api.register()
    session = await hostile_api.new_session(alice)
    first = await hostile_api.post_message(alice, session["id"], "a real message")
    ids = [first.body["id"]]
    recorder = Recorder(str(hostile_server.make_url("")), f"/chat/{session['id']}")
    await recorder.connect(alice.token)
    try:
        answer = await recorder.call("user_message", {"content": "hello"})
        ids += [answer["message"]["id"]]
        refused = await asyncio.to_thread(_fuzz, on_loop(asyncio.get_running_loop()), recorder, ids)
        print(f"\nrefused events (of {MAX_EXAMPLES} each): {refused}")
        assert refused.get("<unknown>") == MAX_EXAMPLES
        # every refusal also came as an `error` event, in order, with the same body
        await recorder.wait_for(lambda: len(recorder.events["error"]) >= sum(refused.values()))
        # and the socket still works
        assert await recorder.call("typing", {"is_typing": False}) == {"ok": True}
    finally:
        await recorder.close()
