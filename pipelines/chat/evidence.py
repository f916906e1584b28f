"""Evidence first: the sentences of the retrieved passages that best answer the question.

A 135M model often gets the fact wrong even when the right passage is in its prompt. The turn therefore
quotes the best sentence or two itself, with their citation markers, before the model's short answer; the
same scores trim each passage in the prompt down to its most relevant sentences and tell whether the
sources are relevant at all. The embedder is the one retrieval already loaded (it runs in its executor).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pipelines.chat.repetition import normalize
from pipelines.rag.sparse import terms
from pipelines.rag.vectors import Hit

#: a sentence must score this much (cosine with the question, plus the keyword bonus) to count as evidence
MIN_SCORE = 0.35
#: a second quoted sentence must score within this of the first
SECOND_WITHIN = 0.06
KEYWORD_WEIGHT = 0.15
MAX_QUOTE_CHARS = 320
QUOTE_WORDS = 6  # shorter pieces are headings or fragments: never quoted alone
MAX_SENTENCES = 40  # per turn, and each embedded by its first EMBED_CHARS: bound the embedding work
EMBED_CHARS = 300
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]\u201d\u2019]*\s+(?=[\"\u201c(\[]?[A-Z0-9])")
_CLOSERS = "\"')\u201d\u2019"


class Embed(Protocol):
    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class Sentence:
    text: str
    source: int  # 1-based: the marker that cites it
    score: float


@dataclass(frozen=True)
class Evidence:
    """What the passages hold for this question."""

    quotes: list[Sentence]  # the best one or two, best first
    passages: list[str]  # each hit's text, cut down to its best sentences (in their order), for the prompt
    best: float  # the best sentence's score; below MIN_SCORE nothing in the sources is relevant

    @property
    def relevant(self) -> bool:
        return self.best >= MIN_SCORE


def sentences_of(text: str) -> list[str]:
    """A passage's sentences: wrapped lines joined, list items and headings kept apart, and a first piece
    that starts mid-sentence (a chunk's overlap with the one before) dropped."""
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines: list[str] = []
        for line in paragraph.splitlines():
            if _BULLET.match(line) or line.lstrip().startswith("#"):
                if lines:
                    units.append(" ".join(lines))
                lines = []
                if line.lstrip().startswith("#"):
                    units.append(line.strip().lstrip("#").strip())
                else:  # a list item: its wrapped lines follow
                    lines = [line.strip()]
            elif line.strip():
                lines.append(line.strip())
        if lines:
            units.append(" ".join(lines))
    sentences = [s.strip() for unit in units for s in _SPLIT.split(re.sub(r"\s+", " ", unit)) if s.strip()]
    if sentences and sentences[0][:1].islower():
        sentences = sentences[1:]
    return [s for s in sentences if len(s.split()) >= 3]


def shorten(sentence: str) -> str:
    """A sentence short enough to quote: a long one is cut at a word with an ellipsis."""
    if len(sentence) <= MAX_QUOTE_CHARS:
        return sentence
    return sentence[:MAX_QUOTE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _keyword_share(question: set[str], sentence: str) -> float:
    return len(question & set(terms(sentence))) / len(question) if question else 0.0


def _can_quote(sentence: Sentence) -> bool:
    """A whole sentence: long enough, starting as a sentence starts and ending as one ends."""
    text = sentence.text
    whole = not text[:1].islower() and text.rstrip(_CLOSERS).endswith((".", "!", "?"))
    return whole and len(text.split()) >= QUOTE_WORDS


async def find_evidence(
    embedder: Embed, questions: Sequence[str], hits: Sequence[Hit], *, quotes: int = 2, passage_chars: int = 600
) -> Evidence:
    """Score every sentence of `hits` against the questions (the latest one, and the one retrieval searched
    for); the best ones, and each hit cut to `passage_chars`."""
    found = [(number, s) for number, hit in enumerate(hits, start=1) for s in sentences_of(hit.text)]
    found = found[:MAX_SENTENCES]
    asking = [q for q in dict.fromkeys(questions) if q.strip()]
    if not found or not asking:
        return Evidence([], [hit.text[:passage_chars] for hit in hits], 0.0)
    vectors = await embedder.embed(asking + [s[:EMBED_CHARS] for _, s in found])
    cosine = (vectors[len(asking) :] @ vectors[: len(asking)].T).max(axis=1)
    asked = {t for q in asking for t in terms(q)}
    scored = [
        Sentence(text, number, float(c) + KEYWORD_WEIGHT * _keyword_share(asked, text))
        for (number, text), c in zip(found, cosine, strict=True)
    ]
    ranked = sorted(scored, key=lambda s: s.score, reverse=True)
    best = ranked[0].score
    chosen: list[Sentence] = []
    for sentence in filter(_can_quote, ranked):
        floor = MIN_SCORE if not chosen else max(MIN_SCORE, chosen[0].score - SECOND_WITHIN)
        if len(chosen) == quotes or sentence.score < floor:
            break
        if all(normalize(sentence.text) != normalize(c.text) for c in chosen):  # overlapping chunks
            chosen.append(sentence)
    passages = [_focus(scored, n, passage_chars) or hit.text[:passage_chars] for n, hit in enumerate(hits, start=1)]
    return Evidence(chosen, passages, best)


def _focus(scored: list[Sentence], source: int, chars: int) -> str:
    """The source's best sentences that fit in `chars`, in the order the passage has them."""
    own = [s for s in scored if s.source == source]
    keep: set[int] = set()
    size = 0
    for index in sorted(range(len(own)), key=lambda i: own[i].score, reverse=True):
        if size + len(own[index].text) > chars and keep:
            continue
        keep.add(index)
        size += len(own[index].text) + 1
    return " ".join(shorten(own[i].text) for i in sorted(keep))


def lead(evidence: Evidence) -> str:
    """The quoted evidence that opens the answer: `"…" [1] "…" [2]`."""
    return " ".join(f'"{shorten(s.text)}" [{s.source}]' for s in evidence.quotes)
