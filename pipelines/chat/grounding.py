"""What a turn's answer stands on: the sources its prompt numbers, and what the answer opens with."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.chat.evidence import Embed, find_evidence, lead
from pipelines.chat.model import AnswerStyle
from pipelines.chat.prompt import NOTHING_FOUND, Passage
from pipelines.chat.sources import Retrieved
from pipelines.rag.vectors import Hit

#: with nothing relevant found, a model with a sentence budget says only this much after the notice
NOTHING_FOUND_SENTENCES = 2


@dataclass(frozen=True)
class Grounding:
    """The prompt's numbered sources (`hits[n - 1]` is source n) and the text the answer opens with."""

    passages: list[Passage] | None  # None: retrieval did not run
    hits: list[Hit] = field(default_factory=list)
    opening: str = ""  # the model's text follows after a blank line
    quoted: list[str] = field(default_factory=list)  # sentences of the opening the model must not repeat
    max_sentences: int | None = None

    @property
    def found(self) -> bool:
        return bool(self.hits)


def _nothing_found(style: AnswerStyle) -> Grounding:
    if not style.evidence_first:
        return Grounding([], max_sentences=style.max_sentences)
    budget = min(style.max_sentences or NOTHING_FOUND_SENTENCES, NOTHING_FOUND_SENTENCES)
    return Grounding([], opening=NOTHING_FOUND, quoted=[NOTHING_FOUND], max_sentences=budget)


async def ground(retrieved: Retrieved | None, question: str, style: AnswerStyle, embedder: Embed | None) -> Grounding:
    """Hosted models get the retrieved chunks whole; a model with `evidence_first` gets each chunk cut to its
    best sentences, an answer that opens with the best one or two quoted, and, when no sentence is relevant
    to the question, no sources and an answer that opens by saying it found nothing."""
    if retrieved is None:
        return Grounding(None, max_sentences=style.max_sentences)
    hits = retrieved.hits
    if not hits:
        return _nothing_found(style)
    if embedder is None or not (style.evidence_first or style.passage_chars):
        return Grounding([Passage.of(h) for h in hits], hits, max_sentences=style.max_sentences)
    chars = style.passage_chars or 2000
    evidence = await find_evidence(embedder, [question, retrieved.query], hits, passage_chars=chars)
    if style.evidence_first and not evidence.relevant:
        return _nothing_found(style)
    passages = [Passage.of(h, text) for h, text in zip(hits, evidence.passages, strict=True)]
    if not style.evidence_first or not evidence.quotes:
        return Grounding(passages, hits, max_sentences=style.max_sentences)
    return Grounding(passages, hits, lead(evidence), [q.text for q in evidence.quotes], style.max_sentences)
