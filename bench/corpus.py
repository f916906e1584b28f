"""Synthetic chunks with random unit vectors, written straight into a vector store (no embedding model)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipelines.rag.sparse import document_vector
from pipelines.rag.vectors import StoredChunk, VectorStore, create_vector_store

DIMS = 384  # the bundled MiniLM encoder's
BATCH = 512
ROOM_CHUNKS = 40
WORDS = (
    "pump",
    "valve",
    "seal",
    "bearing",
    "motor",
    "filter",
    "gasket",
    "sensor",
    "relay",
    "circuit",
    "breaker",
    "fuse",
    "hose",
    "clamp",
    "bolt",
)


def chunks(n: int, documents: list[uuid.UUID], rng: np.random.Generator, start: int = 0) -> list[StoredChunk]:
    """`n` chunks of 40 words spread over `documents`."""
    return [
        StoredChunk(documents[i % len(documents)], f"doc{i % len(documents)}", i, " ".join(rng.choice(WORDS, size=40)))
        for i in range(start, start + n)
    ]


def unit_vectors(n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` random unit vectors of DIMS floats."""
    dense = rng.standard_normal((n, DIMS)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    return dense


def fill(store: VectorStore, owner: uuid.UUID, items: list[StoredChunk], rng: np.random.Generator) -> None:
    """Upsert `items` in batches with random dense and real sparse vectors."""
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
        store.upsert(owner, batch, unit_vectors(len(batch), rng), [document_vector(c.text) for c in batch])


def fill_room(store: VectorStore, rng: np.random.Generator) -> uuid.UUID:
    """A shared room holding another member's attached document of ROOM_CHUNKS chunks; returns the room's id.
    A turn in it searches the asker's library and these chunks."""
    room, attached = uuid.uuid4(), uuid.uuid4()
    fill(store, uuid.uuid4(), [replace(c, session_id=room) for c in chunks(ROOM_CHUNKS, [attached], rng)], rng)
    return room


def fill_shard(path: Path, owner: uuid.UUID, n: int, seed: int = 7) -> None:
    """Give `owner` `n` chunks in the Qdrant Edge shard at `path`, indexed (blocking; no server may hold it)."""
    rng = np.random.default_rng(seed)
    store = create_vector_store(DIMS, path=path)
    try:
        fill(store, owner, chunks(n, [uuid.uuid4() for _ in range(50)], rng), rng)
        store.optimize()
    finally:
        store.close()
