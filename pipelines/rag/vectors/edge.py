"""The embedded engine: one Qdrant Edge shard (in-process segments, HNSW, payload indexes, a WAL).

Searches run in any thread; writes (upserts, deletes, flushes, optimizations) take one lock, so the
shard sees a single writer. A lock file keeps a second process (`run.py ingest` beside a running
server) from opening the same shard; the kernel drops it if the process dies, even by kill -9.
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import qdrant_edge as qe

from pipelines.rag.sparse import SparseVector
from pipelines.rag.vectors import (
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

CONFIG_FILE = "edge_config.json"


def scope_filter(scope: Scope) -> qe.Filter:
    """Owner, then (optionally) documents, then (optionally) the owner's library and this session's documents,
    whoever of its members attached them: (owner and (library or session)) or session."""
    owner = qe.FieldCondition(key="owner_id", match=qe.MatchValue(str(scope.owner_id)))
    must: list[qe.ConditionType] = []
    if scope.document_ids:
        must.append(qe.FieldCondition(key="document_id", match=qe.MatchAny([str(d) for d in scope.document_ids])))
    if scope.session_id is None:
        return qe.Filter(must=[owner, *must])
    in_session = qe.FieldCondition(key="session_id", match=qe.MatchValue(str(scope.session_id)))
    library = qe.Filter(must=[owner, qe.IsEmptyCondition(key="session_id")])
    must.append(qe.Filter(should=[library, in_session]))
    return qe.Filter(must=must)


def _lock(path: Path) -> int:
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(f"the vector shard {path} is open in another process") from None
    return fd


class EdgeStore:
    """Parley's chunks in one Edge shard."""

    def __init__(self, shard: qe.EdgeShard, lock_fd: int) -> None:
        self.shard = shard
        self._lock_fd = lock_fd
        self._write = threading.Lock()

    @classmethod
    def open(cls, path: Path, dimensions: int) -> EdgeStore:
        """Load the shard under `path`, or create it with Parley's layout (blocking)."""
        path.mkdir(parents=True, exist_ok=True)
        fd = _lock(path)
        try:
            if (path / CONFIG_FILE).exists():
                shard = qe.EdgeShard.load(str(path))
            else:
                config = qe.EdgeConfig(
                    vectors={DENSE: qe.EdgeVectorParams(size=dimensions, distance=qe.Distance.Cosine)},
                    sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
                )
                shard = qe.EdgeShard.create(str(path), config)
            have = set(shard.info().payload_schema)
            for field in INDEXED:
                if field not in have:
                    schema = qe.KeywordIndexParams(is_tenant=field == "owner_id")
                    shard.update(qe.UpdateOperation.create_field_index(field, schema))
            shard.flush()
        except BaseException:
            os.close(fd)
            raise
        return cls(shard, fd)

    def upsert(
        self,
        owner_id: uuid.UUID,
        chunks: Sequence[StoredChunk],
        dense: npt.NDArray[np.float32],
        sparse: Sequence[SparseVector],
    ) -> None:
        points = [
            qe.Point(
                id=point_id(chunk),
                vector={DENSE: dense[i].tolist(), SPARSE: qe.SparseVector(indices=sv.indices, values=sv.values)},
                payload=payload(owner_id, chunk),
            )
            for i, (chunk, sv) in enumerate(zip(chunks, sparse, strict=True))
        ]
        with self._write:
            self.shard.update(qe.UpdateOperation.upsert_points(points))

    def search(self, scope: Scope, query: Query) -> list[Hit]:
        flt = scope_filter(scope)
        dense = qe.Query.Nearest(query.dense.tolist(), using=DENSE)
        if query.hybrid and query.sparse.indices:
            sparse = qe.Query.Nearest(qe.SparseVector(query.sparse.indices, query.sparse.values), using=SPARSE)
            request = qe.QueryRequest(
                limit=query.k,
                prefetches=[
                    qe.Prefetch(
                        limit=query.k * PREFETCH, query=dense, filter=flt, score_threshold=query.score_threshold
                    ),
                    qe.Prefetch(limit=query.k * PREFETCH, query=sparse, filter=flt),
                ],
                query=qe.Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]  # the stub types the nested class as Fusion
                with_payload=True,
            )
        else:
            request = qe.QueryRequest(
                limit=query.k, query=dense, filter=flt, with_payload=True, score_threshold=query.score_threshold
            )
        return [hit(point.score, point.payload) for point in self.shard.query(request)]

    def delete(self, scope: Scope) -> None:
        with self._write:
            self.shard.update(qe.UpdateOperation.delete_points_by_filter(scope_filter(scope)))

    def count(self, scope: Scope) -> int:
        return int(self.shard.count(qe.CountRequest(exact=True, filter=scope_filter(scope))))

    def flush(self) -> None:
        with self._write:
            self.shard.flush()

    def optimize(self) -> None:
        with self._write:
            self.shard.optimize()

    def close(self) -> None:
        with self._write:
            self.shard.flush()
            self.shard.close()
        os.close(self._lock_fd)
