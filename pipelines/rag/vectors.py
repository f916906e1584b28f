"""Chunks in Qdrant: one collection per owner, dense and sparse vectors, hybrid search fused with RRF.

A collection per owner keeps every search unfiltered by owner, which matters in embedded local mode
where Qdrant evaluates payload filters in Python. The same code serves a Qdrant server: only the
client's constructor differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from qdrant_client import QdrantClient, models

from pipelines.rag.sparse import SparseVector

DENSE, SPARSE = "dense", "sparse"
PREFETCH = 4  # each side of a hybrid search brings k * PREFETCH candidates to the fusion


@dataclass(frozen=True)
class StoredChunk:
    document_id: uuid.UUID
    document_name: str
    chunk_index: int
    text: str
    page: int | None = None
    heading: str | None = None
    #: set for a document scoped to one session (an attachment): only that session's searches see it
    session_id: uuid.UUID | None = None


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


def create_vector_store(
    dimensions: int, *, path: Path | None = None, url: str | None = None, api_key: str | None = None
) -> VectorStore:
    """A store on a Qdrant server when `url` is given, else in embedded local mode under `path` (blocking)."""
    if url:
        return VectorStore(QdrantClient(url=url, api_key=api_key, timeout=30), dimensions, local=False)
    if path is None:
        raise ValueError("give QDRANT_URL or a local path")
    path.mkdir(parents=True, exist_ok=True)
    return VectorStore(QdrantClient(path=str(path)), dimensions, local=True)


class VectorStore:
    """Synchronous Qdrant operations; callers run them in a worker thread."""

    def __init__(self, client: QdrantClient, dimensions: int, *, local: bool, prefix: str = "parley_u_") -> None:
        self.client = client
        self.local = local
        self.dimensions = dimensions
        self.prefix = prefix

    def collection(self, owner_id: uuid.UUID) -> str:
        return f"{self.prefix}{owner_id.hex}"

    def _ensure(self, name: str) -> None:
        if self.client.collection_exists(name):
            return
        self.client.create_collection(
            name,
            vectors_config={DENSE: models.VectorParams(size=self.dimensions, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        if not self.local:  # local mode filters in Python and ignores (and warns about) payload indexes
            self.client.create_payload_index(name, "document_id", models.PayloadSchemaType.KEYWORD)

    def upsert(
        self,
        owner_id: uuid.UUID,
        chunks: Sequence[StoredChunk],
        dense: npt.NDArray[np.float32],
        sparse: Sequence[SparseVector],
    ) -> None:
        """Store chunks with their vectors; re-storing a document's chunk overwrites it."""
        name = self.collection(owner_id)
        self._ensure(name)
        points = [
            models.PointStruct(
                id=str(uuid.uuid5(chunk.document_id, str(chunk.chunk_index))),
                vector={DENSE: dense[i].tolist(), SPARSE: models.SparseVector(indices=sv.indices, values=sv.values)},
                payload=_payload(chunk),
            )
            for i, (chunk, sv) in enumerate(zip(chunks, sparse, strict=True))
        ]
        self.client.upsert(name, points=points, wait=True)

    def delete_document(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> None:
        """Remove every chunk of one document."""
        name = self.collection(owner_id)
        if self.client.collection_exists(name):
            self.client.delete(name, points_selector=models.FilterSelector(filter=_documents([document_id])), wait=True)

    def delete_owner(self, owner_id: uuid.UUID) -> None:
        """Remove everything of an owner (account erase)."""
        name = self.collection(owner_id)
        if self.client.collection_exists(name):
            self.client.delete_collection(name)

    def count(self, owner_id: uuid.UUID, document_id: uuid.UUID | None = None) -> int:
        name = self.collection(owner_id)
        if not self.client.collection_exists(name):
            return 0
        flt = _documents([document_id]) if document_id else None
        return int(self.client.count(name, count_filter=flt, exact=True).count)

    def search(
        self,
        owner_id: uuid.UUID,
        dense: npt.NDArray[np.float32],
        sparse: SparseVector,
        *,
        k: int = 5,
        document_ids: Sequence[uuid.UUID] | None = None,
        hybrid: bool = True,
        score_threshold: float | None = None,
        session_id: uuid.UUID | None = None,
    ) -> list[Hit]:
        """The best `k` chunks of the owner's documents (optionally only `document_ids`); with `session_id`,
        of the owner's library and that session's documents only."""
        name = self.collection(owner_id)
        if not self.client.collection_exists(name):
            return []
        flt = _scope(document_ids, session_id)
        if hybrid and sparse.indices:
            result = self.client.query_points(
                name,
                prefetch=[
                    models.Prefetch(
                        query=dense.tolist(),
                        using=DENSE,
                        limit=k * PREFETCH,
                        filter=flt,
                        score_threshold=score_threshold,
                    ),
                    models.Prefetch(
                        query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                        using=SPARSE,
                        limit=k * PREFETCH,
                        filter=flt,
                    ),
                ],
                query=models.FusionQuery(fusion=models.Fusion.RRF),
                limit=k,
                with_payload=True,
            )
        else:
            result = self.client.query_points(
                name,
                query=dense.tolist(),
                using=DENSE,
                limit=k,
                query_filter=flt,
                with_payload=True,
                score_threshold=score_threshold,
            )
        return [_hit(point) for point in result.points]


def _payload(chunk: StoredChunk) -> dict[str, object]:
    payload: dict[str, object] = {
        "document_id": str(chunk.document_id),
        "document_name": chunk.document_name,
        "chunk_index": chunk.chunk_index,
        "text": chunk.text,
        "page": chunk.page,
        "heading": chunk.heading,
    }
    if chunk.session_id is not None:
        payload["session_id"] = str(chunk.session_id)
    return payload


def _scope(document_ids: Sequence[uuid.UUID] | None, session_id: uuid.UUID | None) -> models.Filter | None:
    """Only `document_ids` (when given); with `session_id`, library chunks (no session) or that session's."""
    conditions: list[models.Condition] = [_document_condition(document_ids)] if document_ids else []
    if session_id is not None:
        in_library = models.IsEmptyCondition(is_empty=models.PayloadField(key="session_id"))
        in_session = models.FieldCondition(key="session_id", match=models.MatchValue(value=str(session_id)))
        conditions.append(models.Filter(should=[in_library, in_session]))
    return models.Filter(must=conditions) if conditions else None


def _document_condition(document_ids: Sequence[uuid.UUID | None]) -> models.FieldCondition:
    return models.FieldCondition(key="document_id", match=models.MatchAny(any=[str(d) for d in document_ids]))


def _documents(document_ids: Sequence[uuid.UUID | None]) -> models.Filter:
    return models.Filter(must=[_document_condition(document_ids)])


def _hit(point: models.ScoredPoint) -> Hit:
    payload = point.payload or {}
    return Hit(
        document_id=uuid.UUID(str(payload["document_id"])),
        document_name=str(payload.get("document_name", "")),
        chunk_index=int(payload.get("chunk_index", 0)),
        text=str(payload.get("text", "")),
        score=float(point.score),
        page=payload.get("page"),
        heading=payload.get("heading"),
    )
