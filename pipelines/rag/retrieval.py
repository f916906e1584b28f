"""Ingest and search a user's documents: the async face of chunking, embedding and the vector store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from pipelines.rag.chunking import chunk_pages
from pipelines.rag.embedder import Embedder
from pipelines.rag.extract import Page
from pipelines.rag.sparse import document_vector, query_vector
from pipelines.rag.vectors import Hit, StoredChunk, VectorStore

Progress = Callable[[int, int], Awaitable[None]]
BATCH = 32


@dataclass(frozen=True)
class SearchOptions:
    k: int = 5
    document_ids: tuple[uuid.UUID, ...] | None = None
    hybrid: bool = True
    score_threshold: float | None = None
    #: search the owner's library and this session's own documents (attachments), not other sessions'
    session_id: uuid.UUID | None = None

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
    """One per process. Vector store calls go through one worker thread (Qdrant local mode is single-writer)."""

    def __init__(
        self, embedder: Embedder, store: VectorStore, executor: Executor | None = None, cache: SearchCache | None = None
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.cache = cache
        self._store_executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant")

    async def _store(self, fn: Callable[..., object], *args: object, **kwargs: object) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._store_executor, lambda: fn(*args, **kwargs))

    async def ingest(
        self,
        owner_id: uuid.UUID,
        document_id: uuid.UUID,
        name: str,
        pages: Sequence[Page],
        progress: Progress | None = None,
        session_id: uuid.UUID | None = None,
    ) -> int:
        """Chunk, embed and store a document, reporting (chunks done, chunks in all); returns the count."""
        chunks = await asyncio.to_thread(chunk_pages, pages)
        total = len(chunks)
        if progress is not None:
            await progress(0, total)
        for start in range(0, total, BATCH):
            batch = chunks[start : start + BATCH]
            texts = [c.text for c in batch]
            dense = await self.embedder.embed(texts)
            sparse = [document_vector(t) for t in texts]
            stored = [StoredChunk(document_id, name, c.index, c.text, c.page, c.heading, session_id) for c in batch]
            await self._store(self.store.upsert, owner_id, stored, dense, sparse)
            if progress is not None:
                await progress(start + len(batch), total)
        return total

    async def search(self, owner_id: uuid.UUID, query: str, options: SearchOptions | None = None) -> list[Hit]:
        """The chunks that best answer `query` among the owner's documents."""
        options = options or SearchOptions()
        if self.cache is None:
            return await self._search(owner_id, query, options)
        return await self.cache.through(owner_id, query, options, lambda: self._search(owner_id, query, options))

    async def _search(self, owner_id: uuid.UUID, query: str, options: SearchOptions) -> list[Hit]:
        dense = (await self.embedder.embed([query]))[0]
        hits = await self._store(
            self.store.search,
            owner_id,
            dense,
            query_vector(query),
            k=options.k,
            document_ids=options.document_ids,
            hybrid=options.hybrid,
            score_threshold=options.score_threshold,
            session_id=options.session_id,
        )
        assert isinstance(hits, list)
        return hits

    async def delete_document(self, owner_id: uuid.UUID, document_id: uuid.UUID) -> None:
        await self._store(self.store.delete_document, owner_id, document_id)

    async def delete_owner(self, owner_id: uuid.UUID) -> None:
        await self._store(self.store.delete_owner, owner_id)

    async def close(self) -> None:
        """Close the Qdrant client (releasing local mode's lock on the folder)."""
        await self._store(self.store.client.close)
