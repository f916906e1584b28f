"""Keyword vectors for hybrid search: hashed term frequencies, with IDF applied by Qdrant."""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOPWORDS = (
    "a an and are as at be but by for from has have how i if in into is it its of on or our so such that "
    "the their then there these they this to was we were what when where which who why will with you "
    "your does do did can about after before over under than too very"
)
STOPWORDS = frozenset(_STOPWORDS.split())


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


def terms(text: str) -> list[str]:
    """Lower-cased words without stopwords, with a light plural folding."""
    words = [w.lower() for w in _WORD.findall(text)]
    return [
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words if w not in STOPWORDS
    ]


def _index(term: str) -> int:
    return zlib.crc32(term.encode()) & 0x7FFFFFFF  # stable across processes, unlike hash()


def document_vector(text: str) -> SparseVector:
    """Sublinear term frequencies of a chunk; Qdrant's IDF modifier supplies the rarity weight."""
    counts = Counter(_index(t) for t in terms(text))
    indices = sorted(counts)
    return SparseVector(indices, [1.0 + math.log(counts[i]) for i in indices])


def query_vector(text: str) -> SparseVector:
    """Each distinct query term once."""
    indices = sorted({_index(t) for t in terms(text)})
    return SparseVector(indices, [1.0] * len(indices))
