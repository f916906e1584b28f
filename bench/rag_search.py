"""Search latency in Qdrant local mode within one owner's collection: dense vs hybrid, whole collection vs
filtered to three documents; ratios against unfiltered dense search measured in the same run.

    python -m bench.rag_search [--points 10000] [--queries 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from bench.corpus import DIMS, chunks, fill
from pipelines.rag.sparse import SparseVector, query_vector
from pipelines.rag.vectors import create_vector_store


def _time(fn: object, queries: int) -> tuple[float, float]:
    samples = []
    for _ in range(queries):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    owner = uuid.uuid4()
    documents = [uuid.uuid4() for _ in range(50)]
    with tempfile.TemporaryDirectory() as folder:
        store = create_vector_store(DIMS, path=Path(folder) / "q")
        fill(store, owner, chunks(args.points, documents, rng), rng)
        query = rng.standard_normal(DIMS).astype(np.float32)
        query /= np.linalg.norm(query)
        sparse: SparseVector = query_vector("pump seal failure")
        rows = [
            ("dense, own collection", lambda: store.search(owner, query, sparse, k=5, hybrid=False)),
            ("hybrid, own collection", lambda: store.search(owner, query, sparse, k=5)),
            (
                "dense, 3 documents",
                lambda: store.search(owner, query, sparse, k=5, hybrid=False, document_ids=documents[:3]),
            ),
            ("hybrid, 3 documents", lambda: store.search(owner, query, sparse, k=5, document_ids=documents[:3])),
        ]
        results = [(name, *_time(fn, args.queries)) for name, fn in rows]
        store.client.close()
    baseline = results[0][1]
    print(f"Qdrant local mode, {args.points} chunks of one owner, {args.queries} queries, top-5")
    print(f"{'search':28} {'p50 ms':>8} {'p99 ms':>8} {'p50 / dense':>12}")
    for name, p50, p99 in results:
        print(f"{name:28} {p50:8.2f} {p99:8.2f} {p50 / baseline:12.2f}")


if __name__ == "__main__":
    main()
