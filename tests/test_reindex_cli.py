"""Moving a data dir of the former layout (local mode, a collection per user): found at start-up with the
command to run, and `python run.py reindex` rebuilds the vectors from the stored files."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import uuid
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from core.settings import Settings
from pipelines.rag.vectors import Scope
from pipelines.rag.vectors.edge import EdgeStore
from server.app import VECTORS_FOLDER, create_retriever
from tests.test_ingest_cli import _run


def _legacy_folder(path: Path, owner: uuid.UUID) -> None:
    """What the former code wrote: qdrant-client local mode with a collection per owner."""
    client = QdrantClient(path=str(path))
    name = f"parley_u_{owner.hex}"
    client.create_collection(name, vectors_config={"dense": models.VectorParams(size=384, distance="Cosine")})
    client.upsert(name, [models.PointStruct(id=1, vector={"dense": np.ones(384).tolist()}, payload={"text": "x"})])
    client.close()


def _user_id(database: Path, username: str) -> uuid.UUID:
    with sqlite3.connect(database) as connection:
        (value,) = connection.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
    return uuid.UUID(str(value))


async def test_old_layout_is_reported_and_reindex_rebuilds_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    env = {"PARLEY_DATA_DIR": str(data), "JWT_SECRET": "r" * 40}
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\nThe staging server restarts every Sunday at 03:00.\n\n" + "More notes. " * 200)
    assert (await _run("migrate", env=env))[0] == 0
    assert (await _run("createuser", "mover", "--password", "long enough", env=env))[0] == 0
    assert (await _run("ingest", "--user", "mover", str(notes), env=env))[0] == 0
    owner = await asyncio.to_thread(_user_id, data / "parley.db", "mover")
    # the data dir as the former code left it: vectors only in per-user local-mode collections
    await asyncio.to_thread(shutil.rmtree, data / VECTORS_FOLDER)
    await asyncio.to_thread(_legacy_folder, data / "qdrant", owner)

    settings = await asyncio.to_thread(Settings.from_env, env, None)
    with caplog.at_level(logging.WARNING, logger="server.app"):
        retriever = await create_retriever(settings)
        await retriever.close()
    assert "python run.py reindex" in caplog.text and str(data / "qdrant") in caplog.text

    code, out, err = await _run("reindex", env=env)
    assert code == 0, err
    assert "reindexed 1 of 1 documents" in out and "removed the local-mode folder" in out
    assert "[1/1] notes.md" in err and "chunks" in err  # the progress bar
    assert not (data / "qdrant").exists()

    store = await asyncio.to_thread(EdgeStore.open, data / VECTORS_FOLDER, 384)
    try:
        assert await asyncio.to_thread(store.count, Scope(owner)) >= 2
    finally:
        await asyncio.to_thread(store.close)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="server.app"):
        await (await create_retriever(settings)).close()
    assert "reindex" not in caplog.text  # nothing left to move
