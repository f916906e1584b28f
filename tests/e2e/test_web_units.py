"""The web client's pure ES modules, run by node: answer assembly by seq, the 16 kHz resampler, and (under node's
test runner, `*.test.mjs`) the message store, relative times and streaming Markdown."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parent / "web_units.mjs"
NODE_TESTS = sorted(Path(__file__).parent.glob("*.test.mjs"))


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


@pytest.mark.parametrize("path", NODE_TESTS, ids=[path.name for path in NODE_TESTS])
async def test_the_node_test_runner_passes(path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "node is required (make test installs it)"
    process = await asyncio.create_subprocess_exec(
        node,
        "--test",
        "--test-reporter=tap",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    report = out.decode()
    assert process.returncode == 0, report
    assert "# fail 0" in report and "# pass 0" not in report, report
