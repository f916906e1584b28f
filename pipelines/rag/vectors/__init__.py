"""Chunks in Qdrant: one collection for every owner, partitioned by an `owner_id` tenant index.

Two engines behind one protocol: Qdrant Edge (in-process, the embedded default) and a Qdrant server
through qdrant-client (`QDRANT_URL`). Both hold the same layout: a named dense vector, a named sparse
vector with Qdrant's IDF modifier, and keyword payload indexes on `owner_id` (the tenant),
`document_id` and `session_id`. Every search is filtered by owner.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from pipelines.rag.sparse import SparseVector

DENSE, SPARSE = "dense", "sparse"
COLLECTION = "parley_chunks"
PREFETCH = 4  # each side of a hybrid search brings k * PREFETCH candidates to the fusion
RRF_K = 2  # Qdrant's default ranking constant, set explicitly so both engines fuse alike
INDEXED = ("owner_id", "document_id", "session_id")


@dataclass(frozen=True)
class StoredChunk:
    document_id: uuid.UUID
    document_name: str
    chunk_index: int
    text: str
    page: int | None = None
    heading: str | None = None
    session_id: uuid.UUID | None = None  # a document attached to one session; None = the owner's library


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk, with what a citation needs."""

    document_id: uuid.UUID
    document_name: str
    chunk_index: int
    text: str
    score: float
    page: int | None
    heading: str | None


@dataclass(frozen=True)
class Scope:
    """Which chunks a search or a delete may touch: one owner's, optionally narrower.

    `session_id` (searches only) is the owner's library (documents of no session) plus the documents attached
    to that session, by its owner or any of its members: a shared room's documents, never another member's
    library.
    """

    owner_id: uuid.UUID
    document_ids: tuple[uuid.UUID, ...] | None = None
    session_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Query:
    dense: npt.NDArray[np.float32]
    sparse: SparseVector
    k: int = 5
    hybrid: bool = True
    score_threshold: float | None = None


class VectorStore(Protocol):
    """Blocking vector operations; callers run them in worker threads (writes are serialised inside)."""

    def upsert(
        self,
        owner_id: uuid.UUID,
        chunks: Sequence[StoredChunk],
        dense: npt.NDArray[np.float32],
        sparse: Sequence[SparseVector],
    ) -> None:
        """Store chunks with their vectors; re-storing a document's chunk overwrites it."""
        ...

    def search(self, scope: Scope, query: Query) -> list[Hit]:
        """The best `query.k` chunks within `scope`."""
        ...

    def delete(self, scope: Scope) -> None:
        """Remove every chunk within `scope` (a document, or all of an owner's)."""
        ...

    def count(self, scope: Scope) -> int: ...

    def flush(self) -> None:
        """Make every write so far durable (a document is marked ready only after this)."""
        ...

    def optimize(self) -> None:
        """Build indexes for what was written (slow; never on the event loop)."""
        ...

    def close(self) -> None: ...


def point_id(chunk: StoredChunk) -> str:
    """Stable per (document, chunk): re-ingesting a document overwrites its points."""
    return str(uuid.uuid5(chunk.document_id, str(chunk.chunk_index)))


def payload(owner_id: uuid.UUID, chunk: StoredChunk) -> dict[str, Any]:
    return {
        "owner_id": str(owner_id),
        "document_id": str(chunk.document_id),
        "session_id": str(chunk.session_id) if chunk.session_id else None,
        "document_name": chunk.document_name,
        "chunk_index": chunk.chunk_index,
        "text": chunk.text,
        "page": chunk.page,
        "heading": chunk.heading,
    }


def hit(score: float, data: dict[str, Any] | None) -> Hit:
    data = data or {}
    return Hit(
        document_id=uuid.UUID(str(data["document_id"])),
        document_name=str(data.get("document_name", "")),
        chunk_index=int(data.get("chunk_index", 0)),
        text=str(data.get("text", "")),
        score=float(score),
        page=data.get("page"),
        heading=data.get("heading"),
    )


def create_vector_store(
    dimensions: int, *, path: Path | None = None, url: str | None = None, api_key: str | None = None
) -> VectorStore:
    """A Qdrant server's collection when `url` is given, else a Qdrant Edge shard under `path` (blocking)."""
    if url:
        from qdrant_client import QdrantClient

        from pipelines.rag.vectors.server import ServerStore

        return ServerStore(QdrantClient(url=url, api_key=api_key, timeout=30), dimensions)
    if path is None:
        raise ValueError("give QDRANT_URL or a folder for the embedded shard")
    from pipelines.rag.vectors.edge import EdgeStore

    return EdgeStore.open(path, dimensions)
