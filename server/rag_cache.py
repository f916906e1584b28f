"""Retrieval results in the cache as `rag_context:{hash}` (24 h): the same question over the same
documents is answered without embedding or searching again."""

from __future__ import annotations

import uuid

from pydantic import TypeAdapter

from pipelines.rag.retrieval import SearchOptions
from pipelines.rag.vectors import Hit
from store.cache import RAG_CONTEXT_TTL, Cache

_HITS = TypeAdapter(list[Hit])


class RagContextCache:
    """A `SearchCache` over the app cache; keys change whenever the owner's documents change."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    async def lookup(self, owner_id: uuid.UUID, query: str, options: SearchOptions) -> list[Hit] | None:
        key = await self.cache.rag_context_key(owner_id, query, options.as_dict())
        raw = None if key is None else await self.cache.get_json(key)
        return None if raw is None else _HITS.validate_python(raw)

    async def remember(self, owner_id: uuid.UUID, query: str, options: SearchOptions, hits: list[Hit]) -> None:
        key = await self.cache.rag_context_key(owner_id, query, options.as_dict())
        if key is not None:
            await self.cache.put_json(key, _HITS.dump_python(hits, mode="json"), RAG_CONTEXT_TTL)
