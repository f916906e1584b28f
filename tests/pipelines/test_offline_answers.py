"""Answers of the real offline model (SmolLM2-135M on llama.cpp) through the real app: they open with the
document's key sentence quoted and cited, never show a sentence twice, say when nothing matched, and reuse
llama.cpp's prompt cache across turns. CPU-heavy: SQLite only, and one conversation per test."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from pipelines.chat.citations import clean_citations
from pipelines.chat.model import AnswerStyle, Completed
from pipelines.chat.prompt import Passage, build_prompt, estimate_tokens
from pipelines.chat.repetition import SENTENCE_END, normalize
from pipelines.llm.offline import OfflineModel
from store.models import Message, MessageType
from tests.api import Account, Api
from tests.pipelines.rag_corpus import DOCUMENTS

FIXTURES = Path(__file__).parent / "fixtures"
LICENSES = ("apache-2.0.txt", "mpl-2.0.txt", "bsd-3-clause.txt")
pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only: the model, not the database, is under test here."""
    return sqlite_url


async def _library(api: Api, account: Account, names: tuple[str, ...]) -> None:
    ids = []
    for name in names:
        data = (FIXTURES / "licenses" / name).read_bytes() if name in LICENSES else DOCUMENTS[name].encode()
        uploaded = await api.upload(account, name, data)
        status, document = uploaded.status, uploaded.body
        assert status == 202, document
        ids.append(document["id"])
    for document_id in ids:
        assert (await api.document_ready(account, document_id, seconds=300))["status"] == "ready"


async def _ask(http: ClientSession, api: Api, account: Account, session_id: str, query: str) -> dict[str, Any]:
    """One rag-query over SSE: the streamed deltas and the final stored answer."""
    path = f"{api.base}/api/v1/chat/sessions/{session_id}/rag-query"
    headers = {**account.headers, "Accept": "text/event-stream"}
    async with http.post(path, json={"query": query}, headers=headers) as response:
        assert response.status == 200
        raw = (await response.read()).decode()
    events = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1].removeprefix("data: ")))
        for block in raw.strip().split("\n\n")
    ]
    final = events[-1][1]
    return {"deltas": "".join(d["delta"] for name, d in events if name == "token"), **final}


def _sentences(text: str) -> list[str]:
    pieces = SENTENCE_END.split(text.replace('"', " "))
    return [n for n in map(normalize, pieces) if len(n.split()) >= 3]


def _shown_as_stored(answer: dict[str, Any]) -> None:
    """What was streamed is what was stored, but for markers that pointed nowhere."""
    message = answer["message"]
    sources = len(message["rag_context"]["sources"])
    assert clean_citations(answer["deltas"], sources)[0].strip() == message["content"]


async def test_an_answer_about_a_document_quotes_its_key_sentence_with_a_valid_citation(
    api: Api, http: ClientSession
) -> None:
    alice = await api.register()
    await _library(api, alice, ("night-train.md", "express-train.md", "laptop-warranty.md", "sourdough.md"))
    session = await api.new_session(alice)
    answer = await _ask(http, api, alice, session["id"], "When does the Aurora night train leave Vienna?")
    message = answer["message"]
    context = message["rag_context"]
    quoted = re.match(r'"([^"]+)" \[(\d+)\]', message["content"])
    assert quoted is not None, message["content"]
    assert "leaves Vienna at 21:40" in quoted.group(1)
    cited = int(quoted.group(2))
    assert context["sources"][cited - 1]["n"] == cited
    assert context["sources"][cited - 1]["document_name"] == "night-train.md"
    assert cited in context["citations"]
    assert all(1 <= n <= len(context["sources"]) for n in context["citations"])
    assert all(f"[{n}]" in message["content"] for n in context["citations"])
    _shown_as_stored(answer)

    # a question the documents do not answer: it says so instead of citing something unrelated
    answer = await _ask(http, api, alice, session["id"], "hi, how are you today?")
    message = answer["message"]
    assert message["content"].startswith("I found nothing about this in your documents.")
    assert message["rag_context"]["found"] is False and message["rag_context"]["citations"] == []
    assert not re.search(r"\[\d+\]", message["content"])


async def test_no_stored_answer_repeats_a_sentence(api: Api, http: ClientSession) -> None:
    """Prompts that made the offline model loop before (tests/pipelines/fixtures/looping_prompts.json)."""
    fixture = json.loads((FIXTURES / "looping_prompts.json").read_text())
    alice = await api.register()
    await _library(api, alice, tuple(fixture["documents"]))
    session = await api.new_session(alice)
    for prompt in fixture["conversation"]:
        answer = await _ask(http, api, alice, session["id"], prompt)
        message = answer["message"]
        sentences = _sentences(message["content"])
        assert message["status"] == "complete" and sentences, (prompt, message["content"])
        assert len(sentences) == len(set(sentences)), (prompt, message["content"])
        _shown_as_stored(answer)


def _message(kind: MessageType, content: str) -> Message:
    return Message(message_type=kind, content=content)


async def test_a_follow_up_reuses_the_prompt_cache_for_everything_before_it() -> None:
    """llama.cpp reports how many prompt tokens it took from its cache (`timings.cache_n`)."""
    model = OfflineModel(max_tokens=8)
    style = AnswerStyle()
    sources = [Passage("night-train.md", DOCUMENTS["night-train.md"])]
    history = []
    for turn in range(1, 4):
        history.append(_message(MessageType.user, f"Tell me about the night train, part {turn}."))
        prompt = build_prompt(history, sources, style)
        done = [item async for item in model.stream(prompt)][-1]
        assert isinstance(done, Completed)
        if turn > 1:  # everything before the previous question (which carried that turn's sources) was cached
            before = sum(estimate_tokens(m.content) for m in prompt[:-3])
            assert done.cached_tokens >= 0.6 * before, (done, before)
        answer = f"Part {turn}: the Aurora leaves Vienna in the evening and reaches Hamburg the next morning. " * 3
        history.append(_message(MessageType.assistant, answer))
    # the oldest turn dropped from the front: llama.cpp still reuses the rest, shifted into place
    prompt = [prompt[0], *prompt[3:]]
    done = [item async for item in model.stream(prompt)][-1]
    assert isinstance(done, Completed) and done.cached_tokens >= 0.5 * sum(estimate_tokens(m.content) for m in prompt)
    await model.close()
