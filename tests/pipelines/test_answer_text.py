"""What an answer may show: no sentence twice (streamed or stored), a sentence budget, markers that point
somewhere. Pure text processing: no model, no server."""

from __future__ import annotations

import random
import uuid

import pytest

from pipelines.chat.citations import clean_citations, strip_citations
from pipelines.chat.evidence import find_evidence, lead, sentences_of
from pipelines.chat.model import AnswerStyle
from pipelines.chat.prompt import SYSTEM_PROMPT, Passage, build_prompt, estimate_tokens
from pipelines.chat.repetition import LoopGuard, drop_repeated_sentences, normalize
from pipelines.rag.embedder import Embedder
from pipelines.rag.vectors import Hit
from store.models import Message, MessageType
from tests.pipelines.rag_corpus import DOCUMENTS


def stream(guard: LoopGuard, text: str, sizes: tuple[int, ...] = (3,)) -> list[str]:
    """Feed `text` in pieces of the given sizes (cycled); what the guard released, piece by piece."""
    released, position, turn = [], 0, 0
    while position < len(text) and not guard.stopped:
        size = sizes[turn % len(sizes)]
        released.append(guard.feed(text[position : position + size]))
        position, turn = position + size, turn + 1
    released.append(guard.flush())
    return released


def test_ordinary_text_passes_through_whole() -> None:
    text = "The warranty lasts two years. It covers the screen and the keyboard, but not coffee."
    guard = LoopGuard()
    assert "".join(stream(guard, text)) == text
    assert guard.reason is None


def test_a_repeated_sentence_ends_the_answer_before_it_is_shown() -> None:
    loop = "So, to summarize: the license is free. You may copy it. So, to summarize: the license is free. " * 3
    guard = LoopGuard()
    shown = "".join(stream(guard, loop, (1, 4, 2)))
    assert shown == "So, to summarize: the license is free. You may copy it."
    assert guard.stopped and guard.reason == "repetition" and guard.text == shown


def test_a_loop_without_full_stops_is_cut_at_the_repeated_words() -> None:
    loop = "The software may be copied, modified, merged, published, distributed, sublicensed, " * 4
    guard = LoopGuard(ngram=8)
    shown = "".join(stream(guard, loop, (5,)))
    assert shown == "The software may be copied, modified, merged, published, distributed, sublicensed"
    assert guard.reason == "repetition"


def test_a_numbered_run_of_nothing_is_a_loop_for_a_small_model() -> None:
    junk = "It allows\n\n" + "".join(f"* ({n})\n" for n in range(1, 40))
    guard = LoopGuard(ngram=8, fold_numbers=True)
    shown = "".join(stream(guard, junk))
    assert shown.startswith("It allows") and shown.count("*") <= 8 and guard.reason == "repetition"
    rooms = " ".join(f"Room {n} costs {n // 2} euros per night." for n in range(100, 110))
    assert "".join(stream(LoopGuard(ngram=8), rooms)) == rooms  # a list, for a model that does not loop


def test_the_model_repeating_the_quoted_evidence_shows_nothing_more() -> None:
    guard = LoopGuard(seen=["Every Orbis laptop has a two-year warranty."])
    assert "".join(stream(guard, "Every Orbis laptop has a two-year warranty [1]. It covers screens.")) == ""
    assert guard.reason == "repetition"


def test_a_sentence_that_starts_like_an_earlier_one_is_held_only_until_it_differs() -> None:
    guard = LoopGuard(seen=["Every Orbis laptop has a two-year warranty."])
    pieces = stream(guard, "Every Orbis laptop has a two-year warranty for batteries too.", (4,))
    assert "".join(pieces) == "Every Orbis laptop has a two-year warranty for batteries too."
    assert pieces[0] == ""  # held while it could still be the same sentence


def test_the_sentence_budget_ends_the_answer_after_that_many_sentences() -> None:
    guard = LoopGuard(max_sentences=2)
    shown = "".join(stream(guard, "One two three. Four five six! Seven eight nine. Ten eleven twelve."))
    assert shown == "One two three. Four five six!" and guard.reason == "budget"


def test_code_blocks_may_repeat_lines() -> None:
    text = "Run this:\n```\nprint('a b c d e f g h i')\nprint('a b c d e f g h i')\n```\nDone now, really."
    guard = LoopGuard(ngram=4)
    assert "".join(stream(guard, text)) == text


@pytest.mark.parametrize("seed", range(5))
def test_what_is_released_does_not_depend_on_how_the_text_was_cut(seed: int) -> None:
    rng = random.Random(seed)
    text = "Copy it freely. Keep the notice here. " * 2 + "Copy the notice and keep it here, then copy it freely."
    expected = "".join(stream(LoopGuard(), text, (len(text),)))
    sizes = tuple(rng.randint(1, 7) for _ in range(20))
    assert "".join(stream(LoopGuard(), text, sizes)) == expected == "Copy it freely. Keep the notice here."


def test_an_unclosed_marker_waits_for_its_bracket() -> None:
    guard = LoopGuard()
    assert guard.feed("It lasts two years [") == "It lasts two years"
    assert guard.feed("1") == ""
    assert guard.feed("]. And") == " [1]."
    assert guard.flush() == " And"


def test_drop_repeated_sentences_keeps_the_first_of_each() -> None:
    text = "It is free. You may copy it. It is free! Short. Short. You may copy it [2]."
    assert drop_repeated_sentences(text) == "It is free. You may copy it. Short. Short."


def test_normalize_ignores_case_markers_and_punctuation() -> None:
    assert normalize("The warranty, [1] lasts TWO years!") == normalize("the warranty lasts two years [2].")


def test_markers_that_point_nowhere_are_removed() -> None:
    text = "It lasts two years [1]. Coffee is excluded [4]. See [2, 7] and [3][1]."
    cleaned, cited = clean_citations(text, 3)
    assert cleaned == "It lasts two years [1]. Coffee is excluded. See [2] and [3][1]."
    assert cited == [1, 2, 3]


def test_markers_inside_code_are_code() -> None:
    text = "Use `items[0]` and\n```\nx = rows[9]\n```\nas shown [1] [9]."
    cleaned, cited = clean_citations(text, 1)
    assert cleaned == "Use `items[0]` and\n```\nx = rows[9]\n```\nas shown [1]."
    assert cited == [1]
    assert strip_citations("Two years [1].") == "Two years."
    assert clean_citations("Quote [1]\n\n[4] The model [1] says.\n[1] Yes.", 1) == (
        "Quote [1]\n\nThe model [1] says.\n[1] Yes.",
        [1],
    )


def test_an_earlier_answer_may_not_come_again() -> None:
    earlier = '"The Aurora leaves Vienna at 21:40." [1]\n\nIt arrives in Hamburg at 09:15. Breakfast is included.'
    guard = LoopGuard([earlier])
    assert "".join(stream(guard, "Sourdough bakes for forty-five minutes. It arrives in Hamburg at 09:15.")) == (
        "Sourdough bakes for forty-five minutes."
    )


def test_sentences_of_a_passage() -> None:
    passage = (
        "copyright notice above. Redistribution is permitted\nprovided that the following are met:\n\n"
        "1. Redistributions of source code must retain the above\n   copyright notice.\n# Heading here\nShort."
    )
    assert sentences_of(passage) == [
        "Redistribution is permitted provided that the following are met:",
        "Redistributions of source code must retain the above copyright notice.",  # a wrapped list item, whole
    ]


async def test_evidence_is_the_sentence_that_answers_and_small_talk_finds_none() -> None:
    embedder = Embedder()
    names = ("express-train.md", "night-train.md")
    hits = [Hit(uuid.uuid4(), name, 0, DOCUMENTS[name], 0.5, None, None) for name in names]
    evidence = await find_evidence(embedder, ["When does the Aurora night train leave Vienna?"], hits)
    assert evidence.relevant and evidence.quotes[0].source == 2
    quote = '"The Aurora night train leaves Vienna at 21:40 and arrives in Hamburg at 09:15." [2]'
    assert lead(evidence).startswith(quote)
    assert len(evidence.passages) == 2 and all(len(p) <= 600 for p in evidence.passages)
    small_talk = await find_evidence(embedder, ["hi, how are you today?"], hits)
    assert not small_talk.relevant


def _said(kind: MessageType, content: str) -> Message:
    return Message(message_type=kind, content=content)


def test_the_prompt_keeps_its_prefix_and_puts_this_turns_sources_last() -> None:
    user, assistant = MessageType.user, MessageType.assistant
    history = [
        _said(user, "How long is the warranty?"),
        _said(assistant, '"Every laptop has a two-year warranty." [1]\n\nTwo years [1], it says [3].'),
        _said(user, "Does it cover coffee?"),
    ]
    sources = [Passage("warranty.md, page 2", "Spilled coffee is never covered.")]
    prompt = build_prompt(history, sources, AnswerStyle(max_sentences=3))
    assert [m.role for m in prompt] == ["system", "user", "assistant", "user"]
    assert prompt[1].content == "How long is the warranty?"
    assert prompt[2].content == "Two years, it says."  # no quoted opening, no markers of another turn
    assert prompt[3].content.startswith("Sources:\n\n[1] Spilled coffee is never covered. (warranty.md, page 2)")
    assert prompt[3].content.index("Question: Does it cover coffee?") > prompt[3].content.index("[1]")
    follow_up = build_prompt([*history, _said(assistant, "No."), _said(user, "And water?")], [], AnswerStyle())
    assert [m.content for m in follow_up[:3]] == [SYSTEM_PROMPT, *(m.content for m in prompt[1:3])]
    assert "No document matched" in follow_up[-1].content


def test_the_history_is_bounded_by_tokens_and_opens_with_a_question() -> None:
    user, assistant = MessageType.user, MessageType.assistant
    history = [_said(user if i % 2 == 0 else assistant, f"message {i} " + "word " * 40) for i in range(9)]
    prompt = build_prompt(history, None, AnswerStyle(history_tokens=200))
    kept = prompt[1:-1]
    assert kept and kept[0].role == "user" and sum(estimate_tokens(m.content) for m in kept) <= 200
    assert kept[-1].content.startswith("message 7") and prompt[-1].content.startswith("message 8")
