"""Voice end to end: speech over a real socket becomes a message and an answer; answers become speech."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from core.settings import Settings
from pipelines.speech.audio import decode_any, float_to_pcm16, pcm16_to_float, read_wav, resample, to_wav
from pipelines.speech.stt import WhisperEngine, bundled_vosk_model
from pipelines.speech.tts import Pyttsx3Engine
from server.app import create_app
from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.helpers import start_app
from tests.pipelines.speech_util import chunks, wer
from tests.sio import MODELS, Connect, Recorder, payload_validator

QUESTION = "What is the weather like today? Please check the forecast for the weekend. I am going for a long walk."
ANSWER = "Your parcel will arrive on Thursday morning."


@pytest.fixture(scope="module")
async def spoken() -> AsyncIterator[bytes]:
    """The question, spoken by pyttsx3 at rate 150, as 16 kHz pcm16."""
    engine = Pyttsx3Engine()
    wav = await engine.synthesize(QUESTION, rate=150)
    await engine.close()
    samples, rate = read_wav(wav)
    yield float_to_pcm16(resample(samples, rate))


async def _voice(recorder: Recorder, pcm: bytes) -> dict[str, Any]:
    started = await recorder.call("audio_start", {"sample_rate": 16000, "format": "pcm16"})
    assert started["ok"], started
    for chunk in chunks(pcm, 100):
        await recorder.emit("audio_chunk", chunk)
    return dict(await recorder.call("audio_end", {}, seconds=60))


async def test_speech_becomes_a_message_and_an_answer(
    chat_api: Api, groq: GroqFake, connect: Connect, spoken: bytes, http: ClientSession
) -> None:
    alice = await chat_api.register()
    session = await chat_api.new_session(alice, session_type="speech")
    recorder: Recorder = await connect(session["id"], alice.token)
    other: Recorder = await connect(session["id"], alice.token)
    groq.script.tokens = ["Sunny ", "and ", "mild."]
    ended = await _voice(recorder, spoken)
    assert ended["ok"], ended
    final_text = ended["text"]
    error = wer(QUESTION, final_text)
    print(f"\nsocket transcript WER {error:.3f}: {final_text!r}")
    assert error <= 0.25

    await other.wait_for(lambda: bool(other.events["transcript_final"]))
    partial_positions = [i for i, (name, _) in enumerate(other.log) if name == "transcript_partial"]
    final_position = next(i for i, (name, _) in enumerate(other.log) if name == "transcript_final")
    assert partial_positions and max(partial_positions) < final_position  # partials came first
    revisions = [data["rev"] for name, data in other.log if name == "transcript_partial"]
    assert revisions == sorted(revisions)

    message = ended["message"]
    assert message["content_type"] == "audio" and message["content"] == final_text
    assert message["audio_url"] == f"/api/v1/chat/messages/{message['id']}/audio"
    async with http.get(f"{chat_api.base}{message['audio_url']}?token={alice.token}") as response:
        assert response.status == 200 and response.headers["Content-Type"] == "audio/wav"
        audio = await response.read()
    assert abs(len(decode_any(audio, 60)) * 2 - len(spoken)) <= 2  # the whole utterance was kept
    async with http.get(f"{chat_api.base}{message['audio_url']}") as anonymous:
        assert anonymous.status == 401

    answer_id = (await recorder.first("assistant_start"))["message_id"]
    response_event = await recorder.response_for(answer_id)
    assert response_event["content"] == "Sunny and mild." and response_event["message"]["reply_to"] == message["id"]


async def test_answers_are_spoken_on_request_and_automatically(
    chat_api: Api, groq: GroqFake, connect: Connect, http: ClientSession
) -> None:
    alice = await chat_api.register()
    session = await chat_api.new_session(alice, speech_config={"auto_tts": True, "rate": 150})
    recorder: Recorder = await connect(session["id"], alice.token)
    groq.script.tokens = ANSWER.split(" ")
    groq.script.tokens = [t + " " for t in groq.script.tokens[:-1]] + [groq.script.tokens[-1]]
    await recorder.call("user_message", {"content": "Where is my parcel?"})
    answer_id = (await recorder.first("assistant_start"))["message_id"]
    await recorder.response_for(answer_id)
    await recorder.wait_for(lambda: bool(recorder.events["tts_ready"]), seconds=30)
    ready = recorder.events["tts_ready"][0]
    assert ready["message_id"] == answer_id and ready["duration"] > 1

    first = await chat_api.call("POST", f"/api/v1/chat/messages/{answer_id}/tts", token=alice.token)
    again = await chat_api.call("POST", f"/api/v1/chat/messages/{answer_id}/tts", token=alice.token)
    assert first.status == again.status == 200 and first.body == again.body  # cached
    async with http.get(f"{chat_api.base}{first.body['audio_url']}", headers=alice.headers) as response:
        wav = await response.read()
    whisper = WhisperEngine()
    transcript = await asyncio.to_thread(whisper.transcribe, decode_any(wav, 60), beam_size=5)
    assert wer(ANSWER, transcript) <= 0.25, transcript

    asked = await recorder.call("tts_request", {"message_id": answer_id})
    assert asked["ok"] and asked["audio_url"] == first.body["audio_url"]
    mallory = await chat_api.register()
    assert (await chat_api.call("POST", f"/api/v1/chat/messages/{answer_id}/tts", token=mallory.token)).status == 404


async def test_bad_audio_gets_clear_errors_and_the_socket_stays(
    chat_settings: Settings, groq: GroqFake, http: ClientSession, tmp_path: Path
) -> None:
    limited = replace(
        chat_settings,
        data_dir=tmp_path / "own",
        max_utterance_seconds=1,
        max_audio_chunk_bytes=8000,
        audio_seconds_per_minute=2,
    )
    app = create_app(limited)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    api = Api(str(server.make_url("")), http)
    alice = await api.register()
    session = await api.new_session(alice)
    recorder = Recorder(api.base, f"/chat/{session['id']}")
    await recorder.connect(alice.token)
    try:
        assert (await recorder.call("audio_chunk", b"\x00\x00"))["error"]["code"] == "no_utterance"
        wrong_rate = await recorder.call("audio_start", {"sample_rate": 44100, "format": "pcm16"})
        assert wrong_rate["error"]["code"] == "unsupported_sample_rate"
        assert (await recorder.call("audio_start", {"format": "opus"}))["error"]["code"] == "invalid_payload"
        assert (await recorder.call("audio_start", {}))["ok"]
        assert (await recorder.call("audio_start", {}))["error"]["code"] == "utterance_open"
        assert (await recorder.call("audio_chunk", b"\x00" * 3))["error"]["code"] == "invalid_audio"
        assert (await recorder.call("audio_chunk", "text, not audio"))["error"]["code"] == "invalid_payload"
        assert (await recorder.call("audio_chunk", b"\x00" * 10_000))["error"]["code"] == "chunk_too_large"
        huge = await recorder.call("audio_chunk", b"\x00" * (10 * 1024 * 1024), seconds=30)  # a 10 MB chunk
        assert huge["error"]["code"] == "chunk_too_large" and recorder.client.connected
        for _ in range(4):  # four chunks of 0.25 s fit in one second…
            assert (await recorder.call("audio_chunk", b"\x00" * 8000))["ok"]
        too_long = await recorder.call("audio_chunk", b"\x00" * 8000)  # …a fifth does not
        assert too_long["error"]["code"] == "utterance_too_long"
        assert (await recorder.call("audio_end", {}))["error"]["code"] == "no_utterance"  # it was dropped
        assert (await recorder.call("audio_start", {}))["ok"]
        assert (await recorder.call("audio_cancel", {})) == {"ok": True, "cancelled": True}
        assert recorder.client.connected and (await recorder.call("typing", {"is_typing": False}))["ok"]

        not_wav = await api.call(
            "POST",
            f"/api/v1/chat/sessions/{session['id']}/speech",
            data=b"hello there",
            token=alice.token,
            headers={"Content-Type": "audio/wav"},
        )
        assert not_wav.status == 415 and not_wav.code == "unsupported_audio"

        # two seconds of audio per minute: the budget runs out across utterances, with a time to wait
        budget = await recorder.call("audio_start", {})
        assert budget["ok"]
        for _ in range(4):
            assert (await recorder.call("audio_chunk", b"\x00" * 8000))["ok"]
        await recorder.call("audio_cancel", {})
        assert (await recorder.call("audio_start", {}))["ok"]
        limited = await recorder.call("audio_chunk", b"\x00" * 8000)
        assert limited["error"]["code"] == "rate_limited" and 0 < limited["error"]["retry_after"] <= 60
        assert recorder.client.connected
    finally:
        await recorder.close()
        await server.close()


async def test_speech_upload_over_rest_and_status(chat_api: Api, groq: GroqFake, spoken: bytes) -> None:
    alice = await chat_api.register()
    session = await chat_api.new_session(alice)
    groq.script.tokens = ["Take ", "an ", "umbrella."]
    wav = to_wav(pcm16_to_float(spoken))
    reply = await chat_api.call(
        "POST",
        f"/api/v1/chat/sessions/{session['id']}/speech",
        data=wav,
        token=alice.token,
        headers={"Content-Type": "audio/wav"},
    )
    assert reply.status == 200, reply.body
    assert wer(QUESTION, reply.body["transcript"]) <= 0.25
    assert reply.body["message"]["content_type"] == "audio" and reply.body["answer"]["content"] == "Take an umbrella."
    status = await chat_api.call("GET", "/api/v1/speech/status", token=alice.token)
    assert status.body["stt"]["engine"] == "faster-whisper" and status.body["stt"]["available"] is True
    assert status.body["tts"] == {"engine": "pyttsx3", "available": True}


async def test_the_vosk_engine_streams_through_the_socket(
    chat_settings: Settings, groq: GroqFake, http: ClientSession, spoken: bytes, tmp_path: Path
) -> None:
    model = await asyncio.to_thread(bundled_vosk_model)
    assert model is not None
    vosk_settings = replace(chat_settings, data_dir=tmp_path / "own", vosk_model_path=model)
    server = await start_app(vosk_settings)
    api = Api(str(server.make_url("")), http)
    alice = await api.register()
    session = await api.new_session(alice)
    recorder = Recorder(api.base, f"/chat/{session['id']}")
    await recorder.connect(alice.token)
    try:
        ended = await _voice(recorder, spoken)
        await recorder.wait_for(lambda: bool(recorder.events["transcript_partial"]))
        await recorder.wait_for(lambda: bool(recorder.events["transcript_final"]))
        # the Korean model hears English as something: partials, a final and a stored message (content unchecked)
        assert ended["ok"], ended
        assert ended["message"]["content_type"] == "audio"
        history = await api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
        assert history.body["items"][0]["id"] == ended["message"]["id"]
    finally:
        await recorder.close()
        await server.close()


async def test_a_voice_message_refused_as_busy_leaves_no_file_and_can_be_retried(
    chat_api: Api, chat_settings: Settings, groq: GroqFake, connect: Connect, spoken: bytes
) -> None:
    """Finding 5: the recording is stored only once the message is accepted; the refused utterance is kept."""
    alice = await chat_api.register()
    session = await chat_api.new_session(alice, session_type="speech")
    recorder: Recorder = await connect(session["id"], alice.token)
    groq.script.hang_before_first_token = True
    assert (await recorder.call("user_message", {"content": "keep thinking"}))["ok"]
    answer_id = (await recorder.first("assistant_start"))["message_id"]

    refused = await _voice(recorder, spoken)
    assert refused["ok"] is False and refused["error"]["code"] == "busy"
    assert refused["error"]["details"]["kept"] is True
    audio_dir = chat_settings.data_dir / "audio"
    assert await asyncio.to_thread(_recordings, audio_dir) == []  # no orphan recording
    upload = await chat_api.call(
        "POST",
        f"/api/v1/chat/sessions/{session['id']}/speech",
        data=to_wav(pcm16_to_float(spoken)),
        token=alice.token,
        headers={"Content-Type": "audio/wav"},
    )
    assert upload.status == 409 and upload.body["error"]["code"] == "busy"  # the same intake over REST
    assert await asyncio.to_thread(_recordings, audio_dir) == []

    await recorder.call("stop_generation", {"message_id": answer_id})
    await recorder.response_for(answer_id)
    groq.script.hang_before_first_token = False
    retried = await recorder.call("audio_end", {}, seconds=60)  # the kept utterance, without sending it again
    assert retried["ok"], retried
    assert retried["utterance_id"] == refused["error"]["details"]["utterance_id"]
    message = retried["message"]
    assert message["content_type"] == "audio" and wer(QUESTION, message["content"]) <= 0.25
    assert await asyncio.to_thread(_recordings, audio_dir) == [f"{message['id'].replace('-', '')}.wav"]
    again = await recorder.call("audio_end", {})
    assert again["error"]["code"] == "no_utterance"  # used up


def _recordings(audio_dir: Path) -> list[str]:
    return [path.name for path in audio_dir.rglob("*.wav")]


async def test_every_server_event_is_emitted_as_its_model_and_its_documented_schema_says(
    chat_api: Api, groq: GroqFake, connect: Connect, spoken: bytes
) -> None:
    """Drives each `ServerEvent` at least once; the recorders check every payload and ack against its model,
    and here each payload is also checked against the schema the served AsyncAPI document gives it."""
    alice = await chat_api.register()
    session = await chat_api.new_session(alice, session_type="speech")
    speaker: Recorder = await connect(session["id"], alice.token)
    watcher: Recorder = await connect(session["id"], alice.token)

    groq.script.tokens = ["Sunny ", "and ", "mild."]
    sent = await speaker.call("user_message", {"content": "What is the weather?", "client_id": "w1"})
    assert sent["ok"] and (await speaker.call("user_message", {"content": "again", "client_id": "w1"}))["duplicate"]
    await speaker.response_for((await speaker.first("assistant_start"))["message_id"])
    assert (await speaker.call("typing", {"is_typing": True}))["ok"]
    edited = await speaker.call("edit_message", {"message_id": sent["message"]["id"], "content": "Weather?"})
    assert edited["ok"]
    assert (await speaker.call("sync", {"limit": 1}))["has_more"] is True
    ended = await _voice(speaker, spoken)
    assert ended["ok"], ended
    answer_id = ended["message"]["id"]
    await speaker.wait_for(lambda: len(speaker.events["assistant_response"]) == 2, seconds=60)
    assert (await speaker.call("tts_request", {"message_id": answer_id}, seconds=60))["ok"]
    assert (await speaker.call("delete_message", {"message_id": sent["message"]["id"]}))["ok"]
    assert (await speaker.call("stop_generation", {}))["stopped"] is None
    assert (await speaker.call("audio_cancel", {}))["cancelled"] is False
    assert (await speaker.call("edit_message", {"message_id": sent["message"]["id"], "content": " "}))["ok"] is False
    await watcher.wait_for(lambda: bool(watcher.events["message_deleted"]))

    seen = {name for recorder in (speaker, watcher) for name, _ in recorder.log}
    assert seen == set(MODELS), set(MODELS) - seen
    document = (await chat_api.call("GET", "/api/v1/asyncapi.json")).body
    for recorder in (speaker, watcher):
        recorder.check()
        for name, payload in recorder.log:
            assert payload_validator(document, name).is_valid(payload), (name, payload)
