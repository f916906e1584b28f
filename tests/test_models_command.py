"""`python run.py models vosk en-us` against a local mirror (no test reaches the internet)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pipelines.speech.stt import bundled_vosk_model
from tests.test_ingest_cli import _run

pytestmark = pytest.mark.slow  # runs `run.py models` in a process


def _zip_model(model: Path, name: str) -> bytes:
    """A real Vosk model packed the way the upstream archive is (the Korean one stands in for English)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for path in model.rglob("*"):
            if path.is_file():
                archive.write(path, f"{name}/{path.relative_to(model)}")
    return out.getvalue()


async def test_models_vosk_downloads_checks_and_unpacks(tmp_path: Path) -> None:
    model = await asyncio.to_thread(bundled_vosk_model)
    assert model is not None
    archive = await asyncio.to_thread(_zip_model, model, "vosk-model-small-en-us-0.15")

    async def good(_: web.Request) -> web.Response:
        return web.Response(body=archive)

    async def broken(_: web.Request) -> web.Response:
        return web.Response(body=b"not a zip")

    app = web.Application()
    app.router.add_get("/vosk-model-small-en-us-0.15.zip", good)
    app.router.add_get("/broken/vosk-model-small-en-us-0.15.zip", broken)
    mirror = TestServer(app, host="127.0.0.1")
    await mirror.start_server()
    base = str(mirror.make_url("")).rstrip("/")
    env = {"PARLEY_DATA_DIR": str(tmp_path / "data"), "JWT_SECRET": "m" * 40}
    try:
        code, out, err = await _run("models", "vosk", "en-us", env={**env, "VOSK_MODEL_BASE_URL": base})
        assert code == 0, err
        folder = tmp_path / "data" / "models" / "vosk-model-small-en-us-0.15"
        assert f"VOSK_MODEL_PATH={folder}" in out and (folder / "am" / "final.mdl").is_file()

        code, _, err = await _run("models", "vosk", "en-us", env={**env, "VOSK_MODEL_BASE_URL": f"{base}/broken"})
        assert code == 1 and "not a zip" in err and "VOSK_MODEL_PATH" in err
        code, _, err = await _run("models", "vosk", "en-us", env={**env, "VOSK_MODEL_BASE_URL": "http://127.0.0.1:1"})
        assert code == 1 and "On a machine with internet access" in err and "faster-whisper" in err
    finally:
        await mirror.close()
