"""The web client's pure ES modules, run by node: answer assembly by seq and the 16 kHz resampler."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parent / "web_units.mjs"


@pytest.fixture(scope="module")
async def results() -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "node is required (make test installs it)"
    process = await asyncio.create_subprocess_exec(
        node, str(SCRIPT), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return dict(json.loads(out))


async def test_answers_are_assembled_by_seq_without_duplicates_or_gaps(results: dict[str, Any]) -> None:
    assert results["text"] == results["whole"] and results["last_seq"] == 50
    assert results["all_prefixes"] and results["growing"]


async def test_the_microphone_is_resampled_to_16_khz_without_aliasing(results: dict[str, Any]) -> None:
    tones = results["tones"]
    for name in ("48000/440", "48000/3000", "44100/1000"):
        tone = tones[name]
        assert abs(tone["samples"] - 16000) <= 2, name  # one second in, one second out
        assert set(tone["chunks"][:-1]) == {1600}, name  # 100 ms chunks
        assert abs(tone["rms"] - 0.5 / 2**0.5) < 0.01, name  # the speech band passes unchanged
        assert abs(tone["freq"] - int(name.split("/")[1])) < 5, name
    for name in ("48000/9000", "44100/10000"):  # above 8 kHz: filtered out, not folded into the band
        assert tones[name]["rms"] < 0.01, (name, tones[name]["rms"])


async def test_refusals_of_audio_chunk_reach_the_user(results: dict[str, Any]) -> None:
    """Issue 13, finding 4: audio_chunk has no ack, so the view shows its refusals; acked ones stay with the ack."""
    assert results["refusals"] == {
        "audio_chunk_too_long": True,
        "audio_chunk_rate_limited": True,
        "acked_user_message": False,
        "busy": False,
        "server_initiated": True,
    }
