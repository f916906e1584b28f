"""Retrieval results in the cache as `rag_context:{hash}` (24 h): the same question over the same
documents is answered without embedding or searching again."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from pydantic import TypeAdapter

from pipelines.rag.retrieval import SearchOptions
from pipelines.rag.vectors import Hit
from store.cache import RAG_CONTEXT_TTL, Cache

_HITS = TypeAdapter(list[Hit])


class RagContextCache:
    """A `SearchCache` over the app cache; keys change whenever the owner's documents change."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    async def through(
        self,
        owner_id: uuid.UUID,
        query: str,
        options: SearchOptions,
        search: Callable[[], Awaitable[list[Hit]]],
    ) -> list[Hit]:
        key = await self.cache.rag_context_key(owner_id, query, options.as_dict())
        if key is None:  # the cache cannot be reached: search
            return await search()
        raw = await self.cache.get_json(key)
        if raw is not None:
            return _HITS.validate_python(raw)
        hits = await search()
        await self.cache.put_json(key, _HITS.dump_python(hits, mode="json"), RAG_CONTEXT_TTL)
        return hits
