"""Audio helpers: WAV parsing, PCM16 checks, mixing to mono and resampling to 16 kHz (numpy, no audioop)."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
ACCEPTED = "16-bit PCM WAV (any rate, mono or stereo), or raw pcm16 over sockets; webm/ogg/mp3 when ffmpeg is installed"


class AudioError(ValueError):
    """Audio we cannot take; `code` is stable for clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_pcm16(chunk: bytes) -> None:
    """Raw 16-bit little-endian mono PCM must come in whole samples."""
    if len(chunk) % 2:
        raise AudioError("invalid_audio", f"pcm16 needs an even number of bytes, got {len(chunk)}")


def pcm16_to_float(pcm: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: npt.NDArray[np.float32]) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def resample(samples: npt.NDArray[np.float32], rate: int, target: int = SAMPLE_RATE) -> npt.NDArray[np.float32]:
    """Linear-interpolation resampling (speech-grade; enough for recognition)."""
    if rate == target or samples.size == 0:
        return samples.astype(np.float32)
    duration = samples.size / rate
    count = max(1, round(duration * target))
    positions = np.linspace(0, samples.size - 1, count)
    return np.interp(positions, np.arange(samples.size), samples).astype(np.float32)


def read_wav(data: bytes) -> tuple[npt.NDArray[np.float32], int]:
    """Mono float samples and the rate of a 16-bit PCM WAV (channels are averaged)."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError("unsupported_audio", f"not a WAV file ({exc}); accepted: {ACCEPTED}") from exc
    if width != 2:
        raise AudioError("unsupported_audio", f"WAV must be 16-bit PCM, got {8 * width}-bit; accepted: {ACCEPTED}")
    samples = pcm16_to_float(frames)
    if channels > 1:
        samples = samples[: samples.size - samples.size % channels].reshape(-1, channels).mean(axis=1)
    return samples.astype(np.float32), rate


def to_wav(samples: npt.NDArray[np.float32], rate: int = SAMPLE_RATE) -> bytes:
    """A mono 16-bit WAV of `samples`."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(float_to_pcm16(samples))
    return out.getvalue()


def decode_any(data: bytes) -> npt.NDArray[np.float32]:
    """16 kHz mono samples from WAV, or from webm/ogg/mp3 through ffmpeg (blocking: run in a thread)."""
    if data[:4] == b"RIFF":
        samples, rate = read_wav(data)
        return resample(samples, rate)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError("unsupported_audio", f"this server has no ffmpeg; accepted: {ACCEPTED}")
    result = subprocess.run(
        [ffmpeg, "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0 or not result.stdout:
        raise AudioError("unsupported_audio", f"the audio could not be decoded; accepted: {ACCEPTED}")
    return pcm16_to_float(result.stdout)
