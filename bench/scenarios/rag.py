"""Scenario 5: RAG ingestion chunks/s (chunk + embed + store, the real pipeline) and search latency at
10k and 100k chunks in the embedded Qdrant Edge shard (and on a Qdrant server when BENCH_QDRANT_URL is set)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.context import Context
from bench.corpus import DIMS, WORDS, chunks, fill, fill_room, unit_vectors
from bench.report import Result, Table, latency_chart, percentile
from pipelines.rag.embedder import Embedder, bundled_paths
from pipelines.rag.extract import Page
from pipelines.rag.retrieval import Retriever
from pipelines.rag.sparse import query_vector
from pipelines.rag.vectors import Query, Scope, VectorStore, create_vector_store

QUERY = "which seal fails when the pump bearing runs hot"


def _time(fn: Callable[[], object], count: int, seconds: float) -> list[float]:
    """Milliseconds of up to `count` calls of `fn`, stopping after `seconds`."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    for _ in range(count):
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _document(words: int, rng: np.random.Generator) -> str:
    sentences = []
    for _ in range(words // 12):
        sentences.append(" ".join(rng.choice(WORDS, size=12)).capitalize() + ".")
    return " ".join(sentences)


async def _ingestion(folder: Path, words: int, int8_cache: Path | None) -> dict[str, Any]:
    """The real pipeline (chunking, MiniLM embeddings, sparse vectors, Edge upsert and flush) on one document,
    with the model as shipped or (`int8_cache`) as Parley runs it by default; building the int8 copy is not timed."""
    model, tokenizer = bundled_paths()
    embedder = Embedder(model, tokenizer, int8_cache=int8_cache)
    await embedder.embed(["warm up"])
    store = await asyncio.to_thread(
        create_vector_store, embedder.dimensions, path=folder / f"ingest-{'int8' if int8_cache else 'shipped'}"
    )
    retriever = Retriever(embedder, store)
    text = _document(words, np.random.default_rng(3))
    started = time.perf_counter()
    count = await retriever.ingest(uuid.uuid4(), uuid.uuid4(), "bench.txt", [Page(text)])
    seconds = time.perf_counter() - started
    embed_ms: list[float] = []
    for _ in range(30):
        began = time.perf_counter()
        await embedder.embed([QUERY])
        embed_ms.append((time.perf_counter() - began) * 1000)
    await retriever.close()
    return {"chunks": count, "seconds": seconds, "chunks_per_s": count / seconds, "query_embed_ms": embed_ms}


def _searches(
    store: VectorStore, owner: uuid.UUID, documents: list[uuid.UUID], room: uuid.UUID, ctx: Context
) -> dict[str, list[float]]:
    dense = unit_vectors(1, np.random.default_rng(11))[0]
    sparse = query_vector(QUERY)
    count, seconds = (100, 5.0) if ctx.quick else (300, 10.0)
    one = Scope(owner, tuple(documents[:1]))
    turn = Scope(owner, session_id=room)  # what a turn searches: the asker's library and the room's documents
    rows: dict[str, Callable[[], object]] = {
        "dense": lambda: store.search(Scope(owner), Query(dense, sparse, hybrid=False)),
        "hybrid": lambda: store.search(Scope(owner), Query(dense, sparse)),
        "dense, 1 document": lambda: store.search(one, Query(dense, sparse, hybrid=False)),
        "hybrid, 1 document": lambda: store.search(one, Query(dense, sparse)),
        "dense, a turn's scope": lambda: store.search(turn, Query(dense, sparse, hybrid=False)),
        "hybrid, a turn's scope": lambda: store.search(turn, Query(dense, sparse)),
    }
    return {name: _time(fn, count, seconds) for name, fn in rows.items()}


def _scale(store: VectorStore, sizes: list[int], ctx: Context) -> tuple[dict[str, list[float]], dict[int, float]]:
    """Grow one owner's collection to each size; time upserts and searches at each (with a shared room's
    document beside it, for the searches of a turn in that room)."""
    rng = np.random.default_rng(7)
    owner = uuid.uuid4()
    documents = [uuid.uuid4() for _ in range(50)]
    room = fill_room(store, rng)
    searches: dict[str, list[float]] = {}
    upsert_rate: dict[int, float] = {}
    have = 0
    for size in sizes:
        started = time.perf_counter()
        fill(store, owner, chunks(size - have, documents, rng, start=have), rng)
        store.flush()
        upsert_rate[size] = (size - have) / (time.perf_counter() - started)
        store.optimize()  # the HNSW index, as the retriever's writer thread builds it after an ingestion
        have = size
        for name, samples in _searches(store, owner, documents, room, ctx).items():
            searches[f"{size:,} chunks, {name}"] = samples
    return searches, upsert_rate


async def run(ctx: Context) -> Result:
    folder = ctx.log_dir / "rag"
    folder.mkdir(exist_ok=True)
    words = 8_000 if ctx.quick else 15_000
    shipped = await _ingestion(folder, words, None)
    ingestion = await _ingestion(folder, words, ctx.log_dir / "models")
    sizes = [2_000, 10_000] if ctx.quick else [10_000, 100_000]
    edge = await asyncio.to_thread(create_vector_store, DIMS, path=folder / "shard")
    backends: dict[str, tuple[dict[str, list[float]], dict[int, float]]] = {
        "edge": await asyncio.to_thread(_scale, edge, sizes, ctx)
    }
    await asyncio.to_thread(edge.close)
    server_url = os.environ.get("BENCH_QDRANT_URL")
    if server_url:
        server = create_vector_store(DIMS, url=server_url)
        backends["server"] = await asyncio.to_thread(_scale, server, sizes, ctx)
    result = Result("rag")
    ingest_table = Table(
        "5a. Ingestion: chunk + embed (MiniLM, ONNX) + sparse + Edge upsert and flush",
        ["pipeline", "chunks", "seconds", "chunks/s", "query embedding p50 ms"],
    )
    for model, measured in (("model as shipped", shipped), ("int8 copy (the default)", ingestion)):
        ingest_table.add(
            f"Retriever.ingest, one text document, {model}",
            measured["chunks"],
            measured["seconds"],
            measured["chunks_per_s"],
            percentile(measured["query_embed_ms"], 50),
        )
    for backend, (_, rates) in backends.items():
        for size, rate in rates.items():
            ingest_table.add(
                f"upsert only (precomputed vectors), {backend}, up to {size:,}", size, float("nan"), rate, float("nan")
            )
    result.tables.append(ingest_table)
    search_table = Table(
        "5b. Search (vector store only, top-5; add the query embedding above for a retrieval)",
        ["backend, size, search", "queries", "p50 ms", "p99 ms"],
    )
    for backend, (searches, _) in backends.items():
        for name, samples in searches.items():
            search_table.add(f"{backend}, {name}", len(samples), percentile(samples, 50), percentile(samples, 99))
    result.tables.append(search_table)
    if "server" in backends:
        p99 = percentile(backends["server"][0][f"{sizes[-1]:,} chunks, hybrid"], 99)
        result.target(f"retrieval p99 at {sizes[-1]:,} chunks, Qdrant server", p99, "<= 30 ms", p99 <= 30)
    else:
        result.notes.append("no Qdrant server on this machine (set BENCH_QDRANT_URL to add one)")
    largest = f"{sizes[-1]:,} chunks, "
    for name, samples in backends["edge"][0].items():
        if name.startswith(largest):
            p99 = percentile(samples, 99)
            result.target(f"search p99 at {largest}Edge, {name.removeprefix(largest)}", p99, "<= 10 ms", p99 <= 10)
    rate = ingestion["chunks_per_s"]
    result.target("ingestion chunks/s (chunk + embed + store)", rate, ">= 200", rate >= 200)
    result.notes.append(
        f"int8 copy / model as shipped: ingestion {rate / shipped['chunks_per_s']:.2f}x, query embedding p50 "
        f"{percentile(ingestion['query_embed_ms'], 50) / percentile(shipped['query_embed_ms'], 50):.2f}x"
    )
    result.data = {
        "ingestion": ingestion,
        "ingestion_shipped": shipped,
        "backends": {b: {"searches": s, "upsert_per_s": r} for b, (s, r) in backends.items()},
    }
    latency_chart(
        ctx.results / "rag.png",
        "Vector search latency",
        {name: samples for searches, _ in backends.values() for name, samples in searches.items()},
    )
    return result
