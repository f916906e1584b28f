"""Token coalescing: the first delta at once, then merged packets; other events flush pending text first."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

from pipelines.chat.coalesce import MAX_CHARS, coalesce
from pipelines.chat.events import AnswerFinished, AnswerStarted, Token, TurnEvent
from store.models import Message


async def _source(events: list[TurnEvent], closed: list[bool]) -> AsyncIterator[TurnEvent]:
    try:
        for event in events:
            yield event
    finally:
        closed.append(True)


async def _collect(events: list[TurnEvent], max_chars: int = MAX_CHARS) -> list[TurnEvent]:
    """Everything coalesced, with a time window no test run reaches: merging is then by order alone."""
    return [event async for event in coalesce(_source(events, []), max_chars=max_chars, max_delay=60)]


async def test_the_first_token_goes_alone_and_the_rest_is_merged_in_order() -> None:
    started, finished = AnswerStarted(uuid.uuid4()), AnswerFinished(Message())
    words = [Token(f"w{i} ") for i in range(50)]
    out = await _collect([started, *words, finished])
    assert out[0] is started and out[-1] is finished
    tokens = out[1:-1]
    assert tokens[0] == Token("w0 ")  # time-to-first-token is not traded for fewer packets
    assert len(tokens) == 2 and "".join(t.delta for t in tokens if isinstance(t, Token)) == "".join(
        w.delta for w in words
    )


async def test_pending_text_is_flushed_before_any_other_event_and_at_the_end() -> None:
    finished = AnswerFinished(Message())
    out = await _collect([Token("a"), Token("b"), Token("c"), finished, Token("d"), Token("e")])
    assert out == [Token("a"), Token("bc"), finished, Token("de")]


async def test_a_packet_is_bounded_by_max_chars() -> None:
    out = await _collect([Token("xxx") for _ in range(11)], max_chars=7)
    # the first alone; then a packet as soon as 7 characters gather (three tokens); the rest at the end
    assert out == [Token("xxx"), Token("x" * 9), Token("x" * 9), Token("x" * 9), Token("xxx")]


async def test_closing_early_closes_the_source() -> None:
    closed: list[bool] = []
    stream = cast(AsyncGenerator[TurnEvent, None], coalesce(_source([Token(str(i)) for i in range(100)], closed)))
    assert await anext(stream) == Token("0")
    await stream.aclose()
    assert closed == [True]
