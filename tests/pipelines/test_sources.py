"""Which question a turn searches for, and the guess made of it before the question is stored."""

from __future__ import annotations

from pipelines.chat.sources import likely_query, standalone_query
from store.models import Message, MessageType


def _history(*turns: tuple[MessageType, str]) -> list[Message]:
    return [Message(message_type=kind, content=text) for kind, text in turns]


def test_the_guess_made_at_intake_is_the_query_the_turn_searches_for() -> None:
    first = "How long is the laptop warranty?"
    follow_up = "and what about coffee?"
    standalone = "Which countries does the phone warranty cover?"
    asked_once = _history((MessageType.user, first))
    asked_again = _history(
        (MessageType.user, first), (MessageType.assistant, "Two years."), (MessageType.user, follow_up)
    )
    asked_anew = _history(
        (MessageType.user, first), (MessageType.assistant, "Two years."), (MessageType.user, standalone)
    )

    assert likely_query(first, None) == standalone_query(asked_once) == first
    assert likely_query(follow_up, first) == standalone_query(asked_again) == f"{first} {follow_up}"
    assert likely_query(standalone, first) == standalone_query(asked_anew) == standalone
    assert likely_query(f"  {standalone} ", None) == standalone  # stored text is searched stripped


def test_no_guess_when_the_question_leans_on_one_the_node_did_not_see() -> None:
    assert likely_query("and what about coffee?", None) is None
    assert likely_query("refunds?", None) is None  # short questions are taken as follow-ups
    assert likely_query("   ", "How long is the laptop warranty?") is None
