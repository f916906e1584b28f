"""The prompt of a turn, laid out so that follow-ups cost no more than the first question.

llama.cpp (`cache_prompt`) and hosted providers reuse the longest prefix a prompt shares with the one
before, so the layout puts what stays the same first: the system prompt, then the conversation as
stored, and only at the end what belongs to this turn alone, this turn's sources together with the
question, in the final user message. The history is bounded by an estimate of its tokens, not by a count
of messages: one long answer must not push the prompt past what the model reads quickly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipelines.chat.citations import strip_citations
from pipelines.chat.model import AnswerStyle, ImagePart, PromptMessage
from pipelines.rag.vectors import Hit
from store.models import Message, MessageType

SYSTEM_PROMPT = (
    "You are Parley, a helpful assistant. Answer clearly and concisely. "
    "When sources are given, answer from them, cite each source you use by its number in square brackets, "
    "like [1], and say so when they do not contain the answer."
)
BRIEF = " Answer in two or three short sentences."
NOTHING_FOUND = "I found nothing about this in your documents."
NO_SOURCES = (
    "No document matched this question. Say that you found nothing about it in the documents, "
    "and answer from general knowledge only if you are sure."
)
CITE = "Answer from the sources above and cite them like [1]."
#: what `pipelines.chat.grounding` opens an offline answer with: the quoted evidence, or the notice
_OPENING = re.compile(r'^(?:"[^\n]*\[\d+\]|' + re.escape(NOTHING_FOUND) + r")(?:\n\n|$)")
CHARS_PER_TOKEN = 4  # English text in a BPE vocabulary; the estimate only bounds the history
MESSAGE_TOKENS = 4  # the chat template's role markers around each message


@dataclass(frozen=True)
class Passage:
    """A numbered source as the prompt shows it; its number is its position in the list, from 1."""

    label: str
    text: str

    @classmethod
    def of(cls, hit: Hit, text: str | None = None) -> Passage:
        """A retrieved chunk (or `text` cut from it) labelled with its document, page and heading."""
        where = f", page {hit.page}" if hit.page else ""
        heading = f", {hit.heading}" if hit.heading else ""
        return cls(f"{hit.document_name}{where}{heading}", hit.text if text is None else text)


def estimate_tokens(text: str) -> int:
    """Roughly how many tokens a message takes, template included."""
    return len(text) // CHARS_PER_TOKEN + MESSAGE_TOKENS


Images = Mapping[uuid.UUID, tuple[ImagePart, ...]]


def _as_prompt(message: Message, images: Images) -> PromptMessage | None:
    if message.message_type is MessageType.user and message.content:
        return PromptMessage("user", message.content, images.get(message.id, ()))
    if message.message_type is MessageType.assistant:
        # the opening quotes are the sources' words (this turn's sources bring them back when they matter),
        # and a past answer's markers point at that turn's sources, which this prompt does not have
        content = strip_citations(_OPENING.sub("", message.content, count=1)).strip()
        return PromptMessage("assistant", content) if content else None
    return None


def history_window(earlier: Sequence[Message], budget: int, images: Images | None = None) -> list[PromptMessage]:
    """The most recent messages that fit in `budget` estimated tokens, oldest first, opening with a user
    message (an answer without its question confuses small models)."""
    kept: list[PromptMessage] = []
    used = 0
    for message in reversed(earlier):
        prompt = _as_prompt(message, images or {})
        if prompt is None:
            continue
        used += estimate_tokens(prompt.content)
        if used > budget:
            break
        kept.append(prompt)
    kept.reverse()
    while kept and kept[0].role != "user":
        kept.pop(0)
    return kept


def sources_message(passages: Sequence[Passage], question: str) -> str:
    """The final user message: the numbered sources, then the question."""
    if not passages:
        return f"{NO_SOURCES}\n\nQuestion: {question}"
    # the label after the text: small models copy a leading "[1] name:" header into their answers
    numbered = "\n\n".join(f"[{n}] {p.text} ({p.label})" for n, p in enumerate(passages, start=1))
    return f"Sources:\n\n{numbered}\n\nQuestion: {question}\n\n{CITE}"


def build_prompt(
    history: Sequence[Message],
    passages: Sequence[Passage] | None,
    style: AnswerStyle,
    images: Images | None = None,
) -> list[PromptMessage]:
    """System prompt, the bounded conversation before the question, and the question last (with this turn's
    sources when retrieval ran: `passages` is None when it did not). User messages carry their attached
    images (`images` by message id) for models that see them."""
    system = SYSTEM_PROMPT + (BRIEF if style.max_sentences else "")
    questions = [i for i, m in enumerate(history) if m.message_type is MessageType.user]
    if not questions:
        return [PromptMessage("system", system)]
    last = questions[-1]
    question = history[last].content
    final = question if passages is None else sources_message(passages, question)
    earlier = history_window(history[:last], style.history_tokens, images)
    attached = (images or {}).get(history[last].id, ())
    return [PromptMessage("system", system), *earlier, PromptMessage("user", final, attached)]
