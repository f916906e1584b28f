"""Retrieval for a chat turn: which question to search for, with which options, and how its sources are recorded."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from pipelines.rag.retrieval import SearchOptions
from pipelines.rag.vectors import Hit
from store.models import Message, MessageType

_FOLLOW_UP = re.compile(r"^(and|but|also|what about|how about|so)\b|\b(it|its|that|this|they|them|those|these)\b", re.I)
SNIPPET_CHARS = 300


def search_options(rag_config: dict[str, Any]) -> SearchOptions:
    """A session's `rag_config` ({k, document_ids, score_threshold, hybrid}) as search options, with defaults."""
    k = rag_config.get("k", 5)
    threshold = rag_config.get("score_threshold")
    ids = rag_config.get("document_ids")
    return SearchOptions(
        k=min(max(int(k), 1), 20) if isinstance(k, int) else 5,
        document_ids=tuple(uuid.UUID(str(i)) for i in ids) if isinstance(ids, list) and ids else None,
        hybrid=bool(rag_config.get("hybrid", True)),
        score_threshold=float(threshold) if isinstance(threshold, int | float) else None,
    )


def standalone_query(history: list[Message]) -> str:
    """The latest question, made standalone when it is a follow-up ("and how long does it last?")
    by prefixing the user's previous question: no model call, so retrieval adds no generation latency."""
    questions = [m.content for m in history if m.message_type is MessageType.user]
    if not questions:
        return ""
    latest = questions[-1].strip()
    if len(questions) > 1 and _leans_on_earlier(latest):
        return f"{questions[-2].strip()} {latest}"
    return latest


def likely_query(question: str, previous: str | None) -> str | None:
    """What `standalone_query` will search for once `question` follows `previous` (the conversation's question
    before it, as far as the caller knows); None when that cannot be told."""
    latest = question.strip()
    if not latest:
        return None
    if not _leans_on_earlier(latest):
        return latest
    return f"{previous.strip()} {latest}" if previous else None


def _leans_on_earlier(question: str) -> bool:
    return bool(_FOLLOW_UP.search(question)) or len(question.split()) < 5


def context_record(hits: list[Hit], search_mode: str, citations: list[int] | None = None) -> dict[str, Any]:
    """The compact summary kept on the assistant message and sent with `assistant_response`: the sources the
    prompt numbered (`n` is the answer's `[n]` marker for it) and the markers the answer uses."""
    return {
        "search_mode": search_mode,
        "found": bool(hits),
        "sources": [
            {
                "n": n,
                "document_id": str(h.document_id),
                "document_name": h.document_name,
                "page": h.page,
                "heading": h.heading,
                "score": round(h.score, 4),
                "snippet": h.text[:SNIPPET_CHARS],
            }
            for n, h in enumerate(hits, start=1)
        ],
        "citations": citations or [],
    }


@dataclass(frozen=True)
class Retrieved:
    """What retrieval found for one turn."""

    query: str
    hits: list[Hit]
    search_mode: str
    seconds: float
