"""Search latency in the embedded Qdrant Edge shard (one collection, every search filtered by owner):
dense vs hybrid, the owner's library vs one document vs a turn's scope (the library and a shared room's
documents); ratios against dense search measured in the same run.

    python -m bench.rag_search [--points 100000] [--owners 1] [--queries 300]

`--owners N` spreads the points over N owners (the measured one holds points/N); `BENCH_QDRANT_URL` runs
the same searches on a Qdrant server instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.corpus import DIMS, chunks, fill, fill_room, unit_vectors
from pipelines.rag.sparse import query_vector
from pipelines.rag.vectors import Query, Scope, VectorStore, create_vector_store


def timed(fn: Callable[[], object], queries: int) -> tuple[float, float]:
    """p50 and p99 milliseconds of `queries` calls (after a few warm-up calls)."""
    for _ in range(5):
        fn()
    samples = []
    for _ in range(queries):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def measure(store: VectorStore, points: int, owners: int, queries: int) -> list[tuple[str, float, float]]:
    """Fill, index, then time each kind of search; the fill and index times are rows too."""
    rng = np.random.default_rng(7)
    people = [uuid.uuid4() for _ in range(owners)]
    documents = {person: [uuid.uuid4() for _ in range(50)] for person in people}
    started = time.perf_counter()
    for person in people:
        fill(store, person, chunks(points // owners, documents[person], rng), rng)
    room = fill_room(store, rng)
    store.flush()
    filled = time.perf_counter() - started
    started = time.perf_counter()
    store.optimize()
    indexed = time.perf_counter() - started
    owner, one = people[0], documents[people[0]][:1]
    dense, sparse = unit_vectors(1, rng)[0], query_vector("pump seal failure")
    rows: list[tuple[str, Callable[[], object]]] = [
        ("dense, owner's library", lambda: store.search(Scope(owner), Query(dense, sparse, hybrid=False))),
        ("hybrid, owner's library", lambda: store.search(Scope(owner), Query(dense, sparse))),
        ("dense, one document", lambda: store.search(Scope(owner, tuple(one)), Query(dense, sparse, hybrid=False))),
        ("hybrid, one document", lambda: store.search(Scope(owner, tuple(one)), Query(dense, sparse))),
        # what a turn in that room searches: the asker's library and the room's documents
        (
            "dense, a turn's scope",
            lambda: store.search(Scope(owner, session_id=room), Query(dense, sparse, hybrid=False)),
        ),
        ("hybrid, a turn's scope", lambda: store.search(Scope(owner, session_id=room), Query(dense, sparse))),
    ]
    results = [(name, *timed(fn, queries)) for name, fn in rows]
    return [("upsert all (seconds)", filled, filled), ("optimize (seconds)", indexed, indexed), *results]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--owners", type=int, default=1)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    url = os.environ.get("BENCH_QDRANT_URL")
    with tempfile.TemporaryDirectory() as folder:
        store = create_vector_store(DIMS, path=Path(folder) / "shard", url=url)
        try:
            rows = measure(store, args.points, args.owners, args.queries)
        finally:
            store.close()
    engine = "Qdrant server" if url else "Qdrant Edge shard"
    print(f"{engine}, {args.points:,} chunks over {args.owners} owner(s), {args.queries} queries, top-5")
    baseline = rows[2][1]
    print(f"{'search':28} {'p50 ms':>8} {'p99 ms':>8} {'p50 / dense':>12}")
    for name, p50, p99 in rows:
        if name.endswith("(seconds)"):
            print(f"{name:28} {p50:8.1f}")
        else:
            print(f"{name:28} {p50:8.2f} {p99:8.2f} {p50 / baseline:12.2f}")


if __name__ == "__main__":
    main()
