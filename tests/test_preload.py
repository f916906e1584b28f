"""PRELOAD_MODELS: a node loads its local models as it starts, so its first question does not wait for them,
and `/readyz` keeps it out of rotation until they are loaded."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from core.settings import Settings
from server import keys
from server.preload import Preloads
from tests.helpers import start_app


async def _readiness(server: TestServer) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/readyz")) as response:
        return response.status, await response.json()


async def _settled(server: TestServer, seconds: float = 60) -> tuple[int, dict[str, Any]]:
    """/readyz once the models are no longer loading."""
    for _ in range(int(seconds / 0.05)):
        status, body = await _readiness(server)
        if body["checks"].get("models") != "loading":
            return status, body
        assert status == 503 and body["status"] == "unavailable"
        await asyncio.sleep(0.05)
    raise AssertionError("the models never finished loading")


async def test_a_starting_node_loads_the_embedding_model_the_offline_llm_and_speech_to_text(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="server.preload")
    server = await start_app(replace(settings, preload_models=True, llm_providers=("offline",)))
    try:
        status, body = await _settled(server)
        assert (status, body["status"], body["checks"]["models"]) == (200, "ready", "ok")
        assert server.app[keys.RETRIEVER].embedder.loaded
        logged = [record.getMessage() for record in caplog.records]
        assert any(line.startswith("preloaded the embedding model in") for line in logged), logged
        assert any(line.startswith("preloaded the answer model in") for line in logged), logged
        assert any(line.startswith("preloaded the speech-to-text model in") for line in logged), logged
    finally:
        await server.close()


async def test_without_preload_the_models_wait_for_their_first_use(settings: Settings) -> None:
    server = await start_app(replace(settings, preload_models=False))
    try:
        await asyncio.sleep(1)  # a preload would be done by now: the embedding model takes about 0.2 s
        assert not server.app[keys.RETRIEVER].embedder.loaded
        status, body = await _readiness(server)
        assert (status, body["status"]) == (200, "ready") and "models" not in body["checks"]
    finally:
        await server.close()


async def test_a_model_that_cannot_load_is_reported_and_the_node_serves_degraded(
    settings: Settings, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model.onnx"
    server = await start_app(replace(settings, preload_models=True, embedding_model_path=missing))
    try:
        status, body = await _settled(server)
        assert (status, body["status"], body["checks"]["models"]) == (200, "degraded", "unavailable")
        assert not server.app[keys.RETRIEVER].embedder.loaded
        assert any("could not preload the embedding model" in record.getMessage() for record in caplog.records)
    finally:
        await server.close()


async def test_preloads_are_loading_until_every_load_ends() -> None:
    preloads = Preloads()
    assert preloads.state() is None
    release = asyncio.Event()

    async def slow() -> None:
        await release.wait()

    async def broken() -> None:
        raise FileNotFoundError("no model")

    preloads.start("slow model", slow())
    preloads.start("broken model", broken())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert preloads.state() == "loading"
    release.set()
    for _ in range(100):
        if preloads.state() != "loading":
            break
        await asyncio.sleep(0.01)
    assert preloads.state() == "unavailable"
    await preloads.close()
