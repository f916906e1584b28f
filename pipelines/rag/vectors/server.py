"""A Qdrant server (`QDRANT_URL`) through qdrant-client: the same single collection as the embedded shard.

Tests drive this path through qdrant-client's local mode (`QdrantClient(":memory:")` or a path), which
speaks the same client API; local mode ignores payload indexes, so they are created only on a server.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from qdrant_client import QdrantClient, models

from pipelines.rag.sparse import SparseVector
from pipelines.rag.vectors import (
    COLLECTION,
    DENSE,
    INDEXED,
    PREFETCH,
    RRF_K,
    SPARSE,
    Hit,
    Query,
    Scope,
    StoredChunk,
    hit,
    payload,
    point_id,
)

LEGACY_PREFIX = "parley_u_"  # the former collection-per-owner layout


def scope_filter(scope: Scope) -> models.Filter:
    """Owner, then (optionally) documents, then (optionally) the owner's library and this session's documents,
    whoever of its members attached them: (owner and (library or session)) or session."""
    owner = models.FieldCondition(key="owner_id", match=models.MatchValue(value=str(scope.owner_id)))
    must: list[models.Condition] = []
    if scope.document_ids:
        ids = [str(d) for d in scope.document_ids]
        must.append(models.FieldCondition(key="document_id", match=models.MatchAny(any=ids)))
    if scope.session_id is None:
        return models.Filter(must=[owner, *must])
    in_session = models.FieldCondition(key="session_id", match=models.MatchValue(value=str(scope.session_id)))
    library = models.Filter(must=[owner, models.IsEmptyCondition(is_empty=models.PayloadField(key="session_id"))])
    must.append(models.Filter(should=[library, in_session]))
    return models.Filter(must=must)


class ServerStore:
    """Parley's chunks in one collection of a Qdrant server (or of qdrant-client's local mode, in tests)."""

    def __init__(
        self, client: QdrantClient, dimensions: int, *, collection: str = COLLECTION, payload_indexes: bool = True
    ) -> None:
        """`payload_indexes=False` for qdrant-client's local mode, which ignores (and warns about) them."""
        self.client = client
        self.collection = collection
        self._write = threading.Lock()  # local mode is single-writer; on a server it only orders our writes
        if not client.collection_exists(collection):
            client.create_collection(
                collection,
                vectors_config={DENSE: models.VectorParams(size=dimensions, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            if payload_indexes:
                for field in INDEXED:
                    schema = models.KeywordIndexParams(
                        type=models.KeywordIndexType.KEYWORD, is_tenant=field == "owner_id"
                    )
                    client.create_payload_index(collection, field, schema)

    def legacy_collections(self) -> list[str]:
        """Collections of the former one-per-owner layout still on the server."""
        return [c.name for c in self.client.get_collections().collections if c.name.startswith(LEGACY_PREFIX)]

    def upsert(
        self,
        owner_id: uuid.UUID,
        chunks: Sequence[StoredChunk],
        dense: npt.NDArray[np.float32],
        sparse: Sequence[SparseVector],
    ) -> None:
        points = [
            models.PointStruct(
                id=point_id(chunk),
                vector={DENSE: dense[i].tolist(), SPARSE: models.SparseVector(indices=sv.indices, values=sv.values)},
                payload=payload(owner_id, chunk),
            )
            for i, (chunk, sv) in enumerate(zip(chunks, sparse, strict=True))
        ]
        with self._write:
            self.client.upsert(self.collection, points=points, wait=True)

    def search(self, scope: Scope, query: Query) -> list[Hit]:
        flt = scope_filter(scope)
        if query.hybrid and query.sparse.indices:
            result = self.client.query_points(
                self.collection,
                prefetch=[
                    models.Prefetch(
                        query=query.dense.tolist(),
                        using=DENSE,
                        limit=query.k * PREFETCH,
                        filter=flt,
                        score_threshold=query.score_threshold,
                    ),
                    models.Prefetch(
                        query=models.SparseVector(indices=query.sparse.indices, values=query.sparse.values),
                        using=SPARSE,
                        limit=query.k * PREFETCH,
                        filter=flt,
                    ),
                ],
                query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
                limit=query.k,
                with_payload=True,
            )
        else:
            result = self.client.query_points(
                self.collection,
                query=query.dense.tolist(),
                using=DENSE,
                limit=query.k,
                query_filter=flt,
                with_payload=True,
                score_threshold=query.score_threshold,
            )
        return [hit(point.score, point.payload) for point in result.points]

    def delete(self, scope: Scope) -> None:
        with self._write:
            self.client.delete(self.collection, points_selector=models.FilterSelector(filter=scope_filter(scope)))

    def count(self, scope: Scope) -> int:
        return int(self.client.count(self.collection, count_filter=scope_filter(scope), exact=True).count)

    def flush(self) -> None:
        """Writes were acknowledged with `wait=True`: the server has them in its WAL."""

    def optimize(self) -> None:
        """The server's own optimizers index in the background."""

    def close(self) -> None:
        self.client.close()
