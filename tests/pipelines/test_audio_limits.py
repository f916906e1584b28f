"""Audio is measured before it is decoded, charged by what it is, and never queued without bound."""

from __future__ import annotations

import asyncio
import struct

import numpy as np
import pytest

from pipelines.speech.audio import (
    MIN_CHUNK_CHARGE_MS,
    AudioError,
    charge_ms,
    decode_any,
    read_wav,
    to_wav,
    wav_seconds,
)
from pipelines.speech.stt import SttBudget, Utterance


def wav_header(rate: int, seconds: float, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV of silence at `rate` lasting `seconds`."""
    frames = int(rate * seconds)
    data = b"\x00\x00" * frames * channels
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_the_length_comes_from_the_header_and_long_audio_is_refused_before_decoding() -> None:
    assert wav_seconds(wav_header(8000, 2.5)) == 2.5
    with pytest.raises(AudioError) as too_long:
        decode_any(wav_header(8000, 61), 60)
    assert too_long.value.code == "utterance_too_long"
    # a header that claims more than the file holds is measured by what is there
    truncated = wav_header(16_000, 1.0)[:-16_000]
    assert wav_seconds(truncated) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("rate", [100, 170, 7999, 48_001, 192_000])
def test_rates_out_of_range_are_refused(rate: int) -> None:
    with pytest.raises(AudioError) as refused:
        decode_any(wav_header(rate, 0.01 if rate > 1000 else 1), 60)
    assert refused.value.code == "unsupported_sample_rate"


@pytest.mark.parametrize("rate", [8000, 11_025, 22_050, 44_100, 48_000])
def test_rates_in_range_become_16_khz(rate: int) -> None:
    tone = np.sin(np.arange(rate) * 2 * np.pi * 440 / rate).astype(np.float32) * 0.5
    samples = decode_any(to_wav(tone, rate), 60)
    assert samples.size == 16_000 and np.abs(samples).max() == pytest.approx(0.5, abs=0.01)
    back, back_rate = read_wav(to_wav(samples))
    assert back_rate == 16_000 and back.size == 16_000


def test_chunks_are_charged_rounded_up_with_a_minimum() -> None:
    assert charge_ms(30) == MIN_CHUNK_CHARGE_MS  # 15 samples are not free
    assert charge_ms(2) == MIN_CHUNK_CHARGE_MS
    assert charge_ms(32_000) == 1000
    assert charge_ms(32_002) == 1001  # rounded up


class _SlowEngine:
    """A recognizer that takes its time, so queued audio piles up."""

    name = "slow"

    def load(self) -> None:
        return None

    def recognizer(self) -> _SlowEngine:
        return self

    def feed(self, pcm: bytes) -> str | None:
        import time

        time.sleep(0.05)
        return None

    def finish(self) -> str:
        return "done"


async def _nothing(*_args: object) -> None:
    return None


async def test_queued_recognition_is_bounded_per_user() -> None:
    budget = SttBudget(per_owner=2.0)
    second = b"\x00\x00" * 16_000
    alice = [Utterance(_SlowEngine(), None, _nothing, owner="alice", budget=budget) for _ in range(2)]
    alice[0].feed(second)
    alice[1].feed(second)
    with pytest.raises(AudioError) as busy:
        alice[0].feed(second)  # a third second waiting: over alice's share
    assert busy.value.code == "stt_busy"
    bob = Utterance(_SlowEngine(), None, _nothing, owner="bob", budget=budget)
    bob.feed(second)  # others are not held back by alice
    assert [await u.finish() for u in (*alice, bob)] == ["done"] * 3
    assert budget.queued("alice") == 0 and budget.queued("bob") == 0  # recognized audio is released


async def test_an_idle_utterance_ends_itself_and_releases_its_work() -> None:
    budget = SttBudget(per_owner=10.0)
    idled = asyncio.Event()

    async def on_idle() -> None:
        idled.set()

    utterance = Utterance(
        _SlowEngine(), None, _nothing, owner="alice", budget=budget, idle_seconds=0.3, on_idle=on_idle
    )
    utterance.feed(b"\x00\x00" * 1600)
    await asyncio.wait_for(idled.wait(), 10)
    await utterance.cancel()
    assert budget.queued("alice") == 0


async def test_a_cancel_that_meets_a_chunk_ends_the_utterance_at_once() -> None:
    """A cancel that arrives just as a queued chunk is handed to the recognizing task is not lost: it ends the
    utterance at once, not at its idle timeout (`asyncio.wait_for` on Python 3.11 returned the chunk and dropped
    such a cancel, and `audio_cancel`'s ack then waited for the idle timeout)."""
    idled = asyncio.Event()

    async def on_idle() -> None:
        idled.set()

    utterance = Utterance(_SlowEngine(), None, _nothing, idle_seconds=0.5, on_idle=on_idle)
    await asyncio.sleep(0.2)  # the recognizer is made; the task waits for a chunk
    utterance.feed(b"\x00\x00" * 1600)  # handed to the waiting task, which has not resumed yet
    await utterance.cancel()
    assert not idled.is_set()  # cancelled, not ended by its idle timeout
