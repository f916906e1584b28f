"""Audio helpers: WAV parsing, PCM16 checks, mixing to mono and resampling to 16 kHz (numpy, no audioop)."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
#: WAV sample rates we take: below 8 kHz speech is not recognizable, and a very low rate made a small file
#: claim hours of audio (resampled to 16 kHz, a 720 KB WAV at 100 Hz cost 1.2 GB before the length check)
MIN_RATE, MAX_RATE = 8_000, 48_000
#: samples resampled per step: memory stays bounded whatever the length
BLOCK = 1 << 16
#: the least a socket `audio_chunk` is charged, in milliseconds of audio: tiny chunks are not free
MIN_CHUNK_CHARGE_MS = 20
ACCEPTED = (
    f"16-bit PCM WAV ({MIN_RATE}-{MAX_RATE} Hz, mono or stereo), or raw pcm16 at 16 kHz over sockets; "
    "webm/ogg/mp3 when ffmpeg is installed"
)


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


def charge_ms(chunk_bytes: int) -> int:
    """What a socket chunk of 16 kHz pcm16 costs against the audio allowance: its length rounded up, at least
    MIN_CHUNK_CHARGE_MS."""
    return max(MIN_CHUNK_CHARGE_MS, -(-chunk_bytes * 1000 // (2 * SAMPLE_RATE)))


def resample(samples: npt.NDArray[np.float32], rate: int, target: int = SAMPLE_RATE) -> npt.NDArray[np.float32]:
    """Linear-interpolation resampling (speech-grade; enough for recognition), BLOCK output samples at a time."""
    if rate == target or samples.size == 0:
        return samples.astype(np.float32)
    count = max(1, round(samples.size / rate * target))
    step = (samples.size - 1) / (count - 1) if count > 1 else 0.0
    out = np.empty(count, dtype=np.float32)
    for start in range(0, count, BLOCK):
        positions = np.arange(start, min(start + BLOCK, count), dtype=np.float64) * step
        first, last = int(positions[0]), min(int(positions[-1]) + 2, samples.size)
        out[start : start + positions.size] = np.interp(
            positions - first, np.arange(last - first, dtype=np.float64), samples[first:last]
        )
    return out


def wav_seconds(data: bytes) -> float:
    """How long a WAV says it lasts (frames ÷ rate), read from its header without decoding the audio."""
    _, _, rate, frames = _wav_header(data)
    return frames / rate


def _wav_header(data: bytes) -> tuple[int, int, int, int]:
    """Channels, sample width, rate and the frames actually present, checked; nothing is decoded."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            channels, width, rate, frames = wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()
    except (wave.Error, EOFError) as exc:
        raise AudioError("unsupported_audio", f"not a WAV file ({exc}); accepted: {ACCEPTED}") from exc
    if width != 2:
        raise AudioError("unsupported_audio", f"WAV must be 16-bit PCM, got {8 * width}-bit; accepted: {ACCEPTED}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError("unsupported_sample_rate", f"WAV sample rate {rate} Hz is out of range; accepted: {ACCEPTED}")
    return channels, width, rate, min(frames, len(data) // (channels * width))


def read_wav(data: bytes, max_seconds: float | None = None) -> tuple[npt.NDArray[np.float32], int]:
    """Mono float samples and the rate of a 16-bit PCM WAV (channels are averaged).

    With `max_seconds`, a longer WAV is refused from its header, before any of it is decoded."""
    channels, _, rate, frames = _wav_header(data)
    if max_seconds is not None and frames / rate > max_seconds:
        raise AudioError("utterance_too_long", f"at most {max_seconds:.0f} s of audio")
    with wave.open(io.BytesIO(data)) as wav:
        samples = pcm16_to_float(wav.readframes(frames))
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


FFMPEG_OUT = ("-f", "s16le", "-ac", "1", "-ar", str(SAMPLE_RATE))


def decode_any(data: bytes, max_seconds: float) -> npt.NDArray[np.float32]:
    """16 kHz mono samples from WAV, or from webm/ogg/mp3 through ffmpeg (blocking: run in a thread).

    Audio longer than `max_seconds` is refused with `utterance_too_long` before it is resampled: a WAV by its
    header, anything else by decoding at most a little more than `max_seconds` of it."""
    if data[:4] == b"RIFF":
        samples, rate = read_wav(data, max_seconds)
        return resample(samples, rate)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError("unsupported_audio", f"this server has no ffmpeg; accepted: {ACCEPTED}")
    result = subprocess.run(
        [ffmpeg, "-v", "error", "-i", "pipe:0", "-t", str(max_seconds + 1), *FFMPEG_OUT, "pipe:1"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0 or not result.stdout:
        raise AudioError("unsupported_audio", f"the audio could not be decoded; accepted: {ACCEPTED}")
    if len(result.stdout) / 2 / SAMPLE_RATE > max_seconds:
        raise AudioError("utterance_too_long", f"at most {max_seconds:.0f} s of audio")
    return pcm16_to_float(result.stdout)
