"""Audio that once cost gigabytes or held STT work forever, against real servers."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from core.settings import Settings
from tests.api import Api
from tests.helpers import Serve
from tests.hostile.memory import memory_mb
from tests.nodes import Node, start_node
from tests.pipelines.test_audio_limits import wav_header
from tests.sio import Recorder


@pytest.fixture
async def node(http: ClientSession, tmp_path: Path, postgres_url: str) -> AsyncIterator[Node]:
    env = {"DATABASE_URL": postgres_url, "JWT_SECRET": "audio-probe-secret-" + "x" * 20}
    started = await start_node(env, tmp_path, http, "audio")
    yield started
    await started.stop()


async def test_low_rate_and_overlong_wavs_cost_no_memory(node: Node, http: ClientSession) -> None:
    api = Api(node.url, http)
    alice = await api.register()
    session = await api.new_session(alice, session_type="speech")
    path = f"/api/v1/chat/sessions/{session['id']}/speech"
    hour_at_100_hz = wav_header(100, 3600)  # 720 KB: ~1.2 GB once resampled to 16 kHz
    ten_minutes_at_8_khz = wav_header(8000, 612)  # 9.8 MB, under the upload limit
    before = memory_mb(node.process.pid)
    started = time.perf_counter()
    replies = await asyncio.gather(
        *(
            api.call("POST", path, data=io.BytesIO(body), token=alice.token, headers={"Content-Type": "audio/wav"})
            for body in (hour_at_100_hz, ten_minutes_at_8_khz, ten_minutes_at_8_khz, hour_at_100_hz)
        )
    )
    took = time.perf_counter() - started
    after = memory_mb(node.process.pid)
    print(f"4 hostile WAVs: refused in {took:.2f} s; VmHWM {before['VmHWM']:.0f} -> {after['VmHWM']:.0f} MB")
    codes = [(reply.status, reply.code) for reply in replies]
    refused = [(415, "unsupported_sample_rate"), (422, "utterance_too_long")]
    assert codes == [refused[0], refused[1], refused[1], refused[0]]
    assert after["VmHWM"] - before["VmHWM"] < 100, (before, after)  # before: gigabytes


async def _voice_server(serve: Serve, chat_settings: Settings, http: ClientSession, **limits: Any) -> Api:
    server = await serve(replace(chat_settings, **limits))
    return Api(str(server.make_url("")), http)


async def test_tiny_chunks_are_charged(serve: Serve, chat_settings: Settings, http: ClientSession) -> None:
    api = await _voice_server(serve, chat_settings, http, audio_seconds_per_minute=1)
    alice = await api.register()
    session = await api.new_session(alice, session_type="speech")
    recorder = Recorder(api.base, f"/chat/{session['id']}")
    await recorder.connect(alice.token)
    try:
        assert (await recorder.call("audio_start", {}, seconds=60))["ok"]
        acks = [await recorder.call("audio_chunk", b"\x00" * 30) for _ in range(60)]
        refused = [ack for ack in acks if not ack["ok"]]
        # 30 bytes are ~1 ms of audio but cost 20 ms: one second per minute lasts 50 chunks
        assert sum(ack["ok"] for ack in acks) == 50
        assert {ack["error"]["code"] for ack in refused} == {"rate_limited"}
    finally:
        await recorder.close()


async def test_an_utterance_left_open_is_dropped_with_a_reason(
    serve: Serve, chat_settings: Settings, http: ClientSession
) -> None:
    api = await _voice_server(serve, chat_settings, http, utterance_idle_seconds=1.0)
    alice = await api.register()
    session = await api.new_session(alice, session_type="speech")
    recorder = Recorder(api.base, f"/chat/{session['id']}")
    await recorder.connect(alice.token)
    try:
        started = await recorder.call("audio_start", {}, seconds=60)
        assert started["ok"]
        assert (await recorder.call("audio_chunk", b"\x00" * 3200))["ok"]
        await recorder.wait_for(lambda: bool(recorder.events["error"]), seconds=30)
        error = recorder.events["error"][0]
        assert error["code"] == "utterance_timeout" and error["utterance_id"] == started["utterance_id"]
        assert (await recorder.call("audio_end", {}))["error"]["code"] == "no_utterance"
        assert (await recorder.call("audio_start", {}))["ok"]  # the socket goes on
    finally:
        await recorder.close()
