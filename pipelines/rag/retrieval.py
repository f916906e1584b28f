"""Ingest and search a user's documents: the async face of chunking, embedding and the vector store."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from pipelines.rag.chunking import chunk_pages
from pipelines.rag.embedder import Embedder
from pipelines.rag.extract import Page
from pipelines.rag.sparse import SparseVector, document_vector, query_vector
from pipelines.rag.vectors import Hit, Query, Scope, StoredChunk, VectorStore

Progress = Callable[[int, int], Awaitable[None]]
BATCH = 64  # chunks embedded (and upserted) together; the next batch embeds while this one is stored
PREPARED_QUERIES = 64  # query embeddings started ahead of their search (`Retriever.prepare`), newest kept
T = TypeVar("T")


@dataclass(frozen=True)
class SearchOptions:
    k: int = 5
    document_ids: tuple[uuid.UUID, ...] | None = None
    hybrid: bool = True
    score_threshold: float | None = None
    session_id: uuid.UUID | None = None  # the owner's library plus this session's documents only

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SearchCache(Protocol):
    """Remembers search results; it must forget them when the owner's documents change."""

    async def through(
        self,
        owner_id: uuid.UUID,
        query: str,
        options: SearchOptions,
        search: Callable[[], Awaitable[list[Hit]]],
    ) -> list[Hit]:
        """The remembered hits, or `search()`'s, remembered."""
        ...


class Retriever:
    """One per process. Writes go through one writer thread (in order, never on the loop); a search embeds
    the question and searches in one hop to a reader thread."""

    def __init__(self, embedder: Embedder, store: VectorStore, cache: SearchCache | None = None) -> None:
        self.embedder = embedder
        self.store = store
        self.cache = cache
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vectors-write")
        self._readers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vectors-read")
        self._optimizing: asyncio.Future[None] | None = None
        self._prepared: OrderedDict[str, asyncio.Future[npt.NDArray[np.float32]]] = OrderedDict()

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    def _encode(self, texts: list[str]) -> tuple[npt.NDArray[np.float32], list[SparseVector]]:
        return self.embedder.embed_blocking(texts), [document_vector(t) for t in texts]

    async def ingest(
        self,
        owner_id: uuid.UUID,
        document_id: uuid.UUID,
        name: str,
        pages: Sequence[Page],
        progress: Progress | None = None,
        session_id: uuid.UUID | None = None,
    ) -> int:
        """Chunk, embed and store a document, reporting (chunks done, chunks in all); returns the count.

        When this returns, the vectors are flushed: the caller may mark the document ready."""
        chunks = await asyncio.to_thread(chunk_pages, pages)
        total = len(chunks)
        if progress is not None:
            await progress(0, total)
        await self.embedder.load()
        stored: asyncio.Future[None] | None = None
        encoding: asyncio.Future[tuple[npt.NDArray[np.float32], list[SparseVector]]] | None = None
        try:
            for start in range(0, total, BATCH):
                batch = chunks[start : start + BATCH]
                # embed this batch while the previous one is stored and its progress recorded
                encoding = asyncio.ensure_future(asyncio.to_thread(self._encode, [c.text for c in batch]))
                if stored is not None:
                    await stored
                    if progress is not None:
                        await progress(start, total)
                dense, sparse = await encoding
                points = [StoredChunk(document_id, name, c.index, c.text, c.page, c.heading, session_id) for c in batch]
                stored = asyncio.ensure_future(self._write(self.store.upsert, owner_id, points, dense, sparse))
            if stored is not None:
                await stored
        finally:  # cancelled: nothing of ours runs on (an upsert already in the writer thread still lands)
            for pending in (encoding, stored):
                if pending is not None and not pending.done():
                    pending.cancel()
        await self._write(self.store.flush)
        if progress is not None and total:
            await progress(total, total)
        self._optimize_soon()
        return total

    def _optimize_soon(self) -> None:
        """Index new points in the writer thread, once at a time (the next write waits behind it)."""
        if self._optimizing is None or self._optimizing.done():
            self._optimizing = asyncio.get_running_loop().run_in_executor(self._writer, self.store.optimize)

    async def search(self, owner_id: uuid.UUID, query: str, options: SearchOptions | None = None) -> list[Hit]:
        """The chunks that best answer `query` among the owner's documents."""
        options = options or SearchOptions()
        if self.cache is None:
            return await self._search(owner_id, query, options)
        return await self.cache.through(owner_id, query, options, lambda: self._search(owner_id, query, options))

    def prepare(self, query: str) -> None:
        """Start embedding `query` for a `search` of it that is about to come (a turn's question, while its
        message is being stored), so the search finds the vector ready. Does nothing before the model is loaded."""
        if not self.embedder.loaded or query in self._prepared:
            return
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._readers, self.embedder.embed_blocking, [query])
        future.add_done_callback(_retrieve_exception)  # a turn that never came does not await it
        self._prepared[query] = future
        while len(self._prepared) > PREPARED_QUERIES:
            self._prepared.popitem(last=False)

    def _search_blocking(
        self, owner_id: uuid.UUID, text: str, options: SearchOptions, dense: npt.NDArray[np.float32] | None = None
    ) -> list[Hit]:
        query = Query(
            self.embedder.embed_blocking([text])[0] if dense is None else dense,
            query_vector(text),
            k=options.k,
            hybrid=options.hybrid,
            score_threshold=options.score_threshold,
        )
        return self.store.search(Scope(owner_id, options.document_ids, options.session_id), query)

    async def _search(self, owner_id: uuid.UUID, query: str, options: SearchOptions) -> list[Hit]:
        await self.embedder.load()
        dense = None
        if (prepared := self._prepared.pop(query, None)) is not None:
            with contextlib.suppress(Exception):  # it failed: the search embeds the query itself
                dense = (await prepared)[0]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._search_blocking, owner_id, query, options, dense)

    async def count(self, owner_id: uuid.UUID, document_id: uuid.UUID | None = None) -> int:
        scope = Scope(owner_id, (document_id,) if document_id else None)
        return await asyncio.get_running_loop().run_in_executor(self._readers, self.store.count, scope)

    async def delete_document(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> None:
        await self._write(self.store.delete, Scope(owner_id, (document_id,)))

    async def delete_owner(self, owner_id: uuid.UUID) -> None:
        await self._write(self.store.delete, Scope(owner_id))

    async def close(self) -> None:
        """Finish writes (an optimization in progress too), then close the store."""
        await self._write(self.store.close)
        await asyncio.to_thread(self._writer.shutdown, wait=True)
        await asyncio.to_thread(self._readers.shutdown, wait=True)


def _retrieve_exception(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
