"""Fixtures for driving the web client in headless Chromium (Debian's `chromium`) with Playwright's async API."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import Browser, async_playwright

from pipelines.speech.audio import read_wav, to_wav
from pipelines.speech.tts import Pyttsx3Engine

CHROMIUM = Path("/usr/bin/chromium")
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SPOKEN_QUESTION = "What is the weather like today? Please check the forecast for the weekend."
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """The browser test runs once, on PostgreSQL (the API tests cover SQLite)."""
    return postgres_url


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
async def spoken_wav(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The spoken question as a WAV for Chromium's fake microphone, with silence around it; and its length."""
    engine = Pyttsx3Engine()
    try:
        wav = await engine.synthesize(SPOKEN_QUESTION, rate=150)
    finally:
        await engine.close()
    samples, rate = read_wav(wav)
    pcm = np.concatenate([np.zeros(rate // 2, np.float32), samples, np.zeros(rate, np.float32)])
    path = tmp_path_factory.mktemp("voice") / "question.wav"
    await asyncio.to_thread(path.write_bytes, to_wav(pcm, rate))
    return path, len(pcm) / rate


@pytest.fixture(scope="session")
def prerequisites() -> None:
    """What `make test` installs for this test: Chromium, web/node_modules and espeak-ng."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: `make test` installs it (scripts/apt-install.sh chromium)")
    if not (WEB_DIR / "node_modules" / "socket.io-client").is_dir():
        pytest.fail("web/node_modules is missing: `make test` runs npm ci in web/")
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: `make test` installs it")


@pytest.fixture
async def browser(prerequisites: None, spoken_wav: tuple[Path, float]) -> AsyncIterator[Browser]:
    """Headless Chromium whose microphone plays the spoken question."""
    wav, _ = spoken_wav
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"],
        )
        try:
            yield chromium
        finally:
            await chromium.close()
