"""Text-to-speech with pyttsx3 + espeak-ng in one dedicated thread (pyttsx3 is not thread-safe)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


class TtsUnavailable(RuntimeError):
    """No speech engine here; the message says what to install."""


def _has_audio(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 44  # more than a WAV header


def _espeak_cli(text: str, voice: str | None, rate: int, path: Path) -> None:
    """`text` spoken into `path` by the espeak-ng (or espeak) command; runs in the TTS thread."""
    program = shutil.which("espeak-ng") or shutil.which("espeak")
    if program is None:
        raise TtsUnavailable("text-to-speech needs espeak-ng: apt-get install espeak-ng")
    command = [program, "-s", str(rate), "-w", str(path)]
    if voice:
        command += ["-v", voice]
    subprocess.run([*command, "--", text], check=False, capture_output=True, timeout=120)


class Pyttsx3Engine:
    """One engine, one thread: every synthesis is a single `save_to_file` + `runAndWait`, checked and retried."""

    name = "pyttsx3"

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self._engine: Any = None

    def _engine_here(self) -> Any:
        if self._engine is None:
            if shutil.which("espeak-ng") is None and shutil.which("espeak") is None:
                raise TtsUnavailable("text-to-speech needs espeak-ng: apt-get install espeak-ng")
            import pyttsx3

            self._engine = pyttsx3.init()
        return self._engine

    def _synthesize(self, text: str, voice: str | None, rate: int) -> bytes:
        engine = self._engine_here()
        engine.setProperty("rate", rate)
        if voice:
            engine.setProperty("voice", voice)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "speech.wav"
            engine.save_to_file(text, str(path))
            engine.runAndWait()
            if _has_audio(path):
                return path.read_bytes()
            # pyttsx3's espeak driver writes the file when espeak reports the end, before it appends that
            # callback's samples: when the whole utterance arrives in that last callback (seen under CPU
            # load), the file is a bare header, and again on a retry. The same voice from espeak-ng's own
            # command line does not have that race.
            _espeak_cli(text, voice, rate, path)
            if _has_audio(path):
                return path.read_bytes()
        raise TtsUnavailable("the speech engine produced no audio")

    async def synthesize(self, text: str, *, voice: str | None = None, rate: int = 150) -> bytes:
        """A WAV (22,050 Hz mono 16-bit with espeak-ng) of `text`."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._synthesize, text, voice, rate)

    def voices(self) -> list[str]:
        return [v.id for v in self._engine_here().getProperty("voices")]

    async def close(self) -> None:
        await asyncio.to_thread(self._thread.shutdown, wait=True)
