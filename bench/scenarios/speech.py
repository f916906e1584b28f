"""Scenario 6: speech pipelines in-process. TTS (pyttsx3 + espeak-ng) seconds of audio per second; STT
(faster-whisper tiny.en, int8, one thread) real-time factor, and the time from the last audio chunk to the
final transcript (the final beam-5 decode Parley runs at `audio_end`, which is what precedes `transcript_final`)."""

from __future__ import annotations

import shutil
import statistics
import time
from typing import Any

from bench.context import Context
from bench.report import Result, Table, latency_chart
from pipelines.speech.audio import SAMPLE_RATE, float_to_pcm16, read_wav, resample
from pipelines.speech.stt import WhisperEngine
from pipelines.speech.tts import Pyttsx3Engine

TEXTS = (
    "The pump seal failed after the bearing ran hot for two hours, so the valve was closed and the motor stopped.",
    "Please check the filter, the gasket and the hose clamp before the next inspection on Monday morning.",
    "A breaker tripped in the relay circuit; replace the fuse and log the sensor readings in the maintenance report.",
)
CHUNK_SECONDS = 0.25


async def _tts(rounds: int) -> tuple[list[dict[str, Any]], list[bytes]]:
    engine = Pyttsx3Engine()
    rows, wavs = [], []
    try:
        await engine.synthesize("warm up")
        for index in range(rounds):
            text = TEXTS[index % len(TEXTS)]
            started = time.perf_counter()
            wav = await engine.synthesize(text)
            seconds = time.perf_counter() - started
            samples, rate = read_wav(wav)
            rows.append({"audio_s": samples.size / rate, "wall_s": seconds})
            wavs.append(wav)
    finally:
        await engine.close()
    return rows, wavs


def _stt(wavs: list[bytes], threads: int) -> list[dict[str, Any]]:
    engine = WhisperEngine(threads=threads)
    engine.load()
    rows = []
    for wav in wavs:
        samples, rate = read_wav(wav)
        audio = resample(samples, rate, SAMPLE_RATE)
        pcm = float_to_pcm16(audio)
        step = int(CHUNK_SECONDS * SAMPLE_RATE) * 2
        recognizer = engine.recognizer()
        started = time.perf_counter()
        for offset in range(0, len(pcm), step):  # partial decodes happen inside feed, as while streaming
            recognizer.feed(pcm[offset : offset + step])
        fed = time.perf_counter()
        text = recognizer.finish()
        done = time.perf_counter()
        seconds = audio.size / SAMPLE_RATE
        began = time.perf_counter()
        engine.transcribe(audio, beam_size=5)
        whole = time.perf_counter() - began
        rows.append(
            {
                "audio_s": seconds,
                "rtf": whole / seconds,
                "streaming_rtf": (done - started) / seconds,
                "final_ms": (done - fed) * 1000,
                "text": text,
            }
        )
    return rows


async def run(ctx: Context) -> Result:
    if shutil.which("espeak-ng") is None and shutil.which("espeak") is None:
        raise RuntimeError("espeak-ng is missing: scripts/apt-install.sh espeak-ng")
    tts_rows, wavs = await _tts(3 if ctx.quick else 6)
    stt_one = _stt(wavs[:3], threads=1)
    stt_two = _stt(wavs[:3], threads=2) if not ctx.quick else []
    result = Result("speech")
    tts = Table(
        "6a. Text-to-speech: pyttsx3 + espeak-ng, 22,050 Hz WAV",
        ["engine", "utterances", "audio s", "wall s", "audio s per s"],
    )
    audio = sum(r["audio_s"] for r in tts_rows)
    wall = sum(r["wall_s"] for r in tts_rows)
    tts.add("pyttsx3 / espeak-ng", len(tts_rows), audio, wall, audio / wall)
    result.tables.append(tts)
    stt = Table(
        "6b. Speech-to-text: faster-whisper tiny.en int8 on the synthesized utterances",
        [
            "threads",
            "utterances",
            "audio s",
            "RTF (one beam-5 decode)",
            "RTF streaming (partials + final)",
            "last chunk → final text p50 ms",
            "max ms",
        ],
    )
    for threads, rows in ((1, stt_one), (2, stt_two)):
        if not rows:
            continue
        stt.add(
            threads,
            len(rows),
            sum(r["audio_s"] for r in rows),
            statistics.mean(r["rtf"] for r in rows),
            statistics.mean(r["streaming_rtf"] for r in rows),
            statistics.median(r["final_ms"] for r in rows),
            max(r["final_ms"] for r in rows),
        )
    result.tables.append(stt)
    rtf = statistics.mean(r["rtf"] for r in stt_one)
    result.target("STT real-time factor, one core", rtf, "<= 0.3", rtf <= 0.3)
    result.notes.append(
        "measured in-process on the pipeline (no socket): the socket path adds the audio_end round trip and the "
        "message commit; transcripts: " + " | ".join(r["text"] for r in stt_one)
    )
    result.data = {"tts": tts_rows, "stt_1_thread": stt_one, "stt_2_threads": stt_two}
    latency_chart(
        ctx.results / "speech.png",
        "Last audio chunk → final transcript",
        {f"{t} thread(s)": [r["final_ms"] for r in rows] for t, rows in ((1, stt_one), (2, stt_two)) if rows},
    )
    return result
