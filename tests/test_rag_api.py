"""RAG end to end over real HTTP and sockets: upload, background ingestion, answers that cite their sources."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiohttp.test_utils import TestServer

from server import keys
from tests.api import Api
from tests.fakes.groq import GroqFake
from tests.pipelines.pdfgen import make_pdf
from tests.sio import Connect, Recorder

WARRANTY = (
    "# Orbis laptop warranty\nEvery Orbis laptop has a two-year warranty covering the motherboard and screen.\n\n"
    "## Claims\nShip the laptop to the Rotterdam repair centre with the receipt. Spilled coffee is never covered."
)


async def test_upload_ingests_in_the_background_and_answers_cite_it(
    chat_api: Api, chat_server: TestServer, groq: GroqFake, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    retriever = chat_server.app[keys.RETRIEVER]
    prepared: list[str] = []  # the queries the node embedded while their questions were being stored
    prepare = retriever.prepare

    def noted(query: str) -> None:
        prepared.append(query)
        prepare(query)

    monkeypatch.setattr(retriever, "prepare", noted)
    alice = await chat_api.register()
    uploaded = await chat_api.upload(alice, "warranty.md", WARRANTY.encode())
    document = uploaded.body
    assert uploaded.status == 202 and document["status"] in ("pending", "processing", "ready")
    again = await chat_api.upload(alice, "copy.md", WARRANTY.encode())
    assert (again.status, again.body["id"]) == (200, document["id"])  # deduplicated by content
    ready = await chat_api.document_ready(alice, document["id"])
    assert ready["status"] == "ready" and ready["chunk_count"] == ready["chunks_done"] >= 1

    session = await chat_api.new_session(alice)
    recorder: Recorder = await connect(session["id"], alice.token)
    groq.script.tokens = ["It ", "is ", "covered ", "for ", "two ", "years."]
    await recorder.call("user_message", {"content": "How long is the laptop warranty?"})
    answer_id = (await recorder.first("assistant_start"))["message_id"]
    response = await recorder.response_for(answer_id)
    sources = response["rag_context"]["sources"]
    assert sources[0]["document_id"] == document["id"] and sources[0]["document_name"] == "warranty.md"
    assert response["rag_context"]["found"] is True
    # a stable prefix (system prompt, then the conversation) and this turn's numbered sources with the question last
    messages = groq.requests[-1]["messages"]
    assert messages[0]["role"] == "system" and "[1]" in messages[0]["content"]  # asked to cite like [1]
    question = messages[-1]
    assert question["role"] == "user" and "[1] Every Orbis laptop has a two-year warranty" in question["content"]
    assert question["content"].rstrip().endswith("like [1].")
    assert question["content"].index("two-year warranty") < question["content"].index("How long is the laptop")
    assert [s["n"] for s in sources] == list(range(1, len(sources) + 1))
    assert response["rag_context"]["citations"] == []  # the scripted answer cites nothing

    context = await chat_api.call("GET", f"/api/v1/chat/messages/{answer_id}/rag-context", token=alice.token)
    assert context.status == 200
    assert context.body["query"] == "How long is the laptop warranty?" and context.body["llm_provider"] == "groq"
    assert context.body["retrieved_documents"][0]["document_id"] == document["id"]
    assert "two-year warranty" in context.body["generation_prompt"]

    # a follow-up is searched together with the question before it
    await recorder.call("user_message", {"content": "and what about coffee?"})
    await recorder.wait_for(lambda: len(recorder.events["assistant_response"]) == 2)
    follow = await chat_api.call(
        "GET",
        f"/api/v1/chat/messages/{recorder.events['assistant_response'][1]['message_id']}/rag-context",
        token=alice.token,
    )
    assert follow.body["query"] == "How long is the laptop warranty? and what about coffee?"
    assert prepared == [context.body["query"], follow.body["query"]]  # anticipated exactly what was searched
    follow_up = groq.requests[-1]["messages"]
    assert follow_up[0] == messages[0]  # the same system prompt: the provider's prompt cache keeps working
    assert [m["role"] for m in follow_up] == ["system", "user", "assistant", "user"]
    assert follow_up[1]["content"] == "How long is the laptop warranty?"  # the history holds questions bare
    assert follow_up[2]["content"] == "It is covered for two years."

    mallory = await chat_api.register()
    assert (await chat_api.call("GET", f"/api/v1/documents/{document['id']}", token=mallory.token)).status == 404
    peek = await chat_api.call("GET", f"/api/v1/chat/messages/{answer_id}/rag-context", token=mallory.token)
    assert peek.status == 404

    deleted = await chat_api.call("DELETE", f"/api/v1/documents/{document['id']}", token=alice.token)
    assert deleted.status == 204
    assert (await chat_api.call("GET", f"/api/v1/documents/{document['id']}", token=alice.token)).status == 404
    reply = await chat_api.call(
        "POST",
        f"/api/v1/chat/sessions/{session['id']}/rag-query",
        {"query": "How long is the laptop warranty?"},
        token=alice.token,
    )
    assert reply.status == 200 and reply.body["rag_context"]["retrieved_documents"] == []
    assert "No document matched" in groq.requests[-1]["messages"][-1]["content"]


async def test_markers_point_at_numbered_sources_and_stray_ones_are_dropped(
    chat_api: Api, groq: GroqFake, connect: Connect
) -> None:
    alice = await chat_api.register()
    document = (await chat_api.upload(alice, "warranty.md", WARRANTY.encode())).body
    assert (await chat_api.document_ready(alice, document["id"]))["status"] == "ready"
    session = await chat_api.new_session(alice)
    recorder: Recorder = await connect(session["id"], alice.token)
    groq.script.tokens = ["Two ", "years [1]", ", never ", "coffee [2][7", "]. Ask [9] the", " centre [1, 8]."]
    await recorder.call("user_message", {"content": "How long is the laptop warranty, and is coffee covered?"})
    answer_id = (await recorder.first("assistant_start"))["message_id"]
    response = await recorder.response_for(answer_id)
    assert response["content"] == "Two years [1], never coffee [2]. Ask the centre [1]."
    context = response["rag_context"]
    assert [s["n"] for s in context["sources"]] == [1, 2] and context["citations"] == [1, 2]
    assert {s["document_id"] for s in context["sources"]} == {document["id"]}
    listed = await chat_api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
    stored = next(m for m in listed.body["items"] if m["id"] == answer_id)
    assert (stored["content"], stored["rag_context"]) == (response["content"], context)


async def test_rag_query_over_rest_as_json_and_as_sse(chat_api: Api, groq: GroqFake) -> None:
    alice = await chat_api.register()
    pdf = make_pdf([["Cover page."], ["The Aurora night train leaves Vienna at 21:40."], ["Bicycles need booking."]])
    document = (await chat_api.upload(alice, "trains.pdf", pdf)).body
    assert (await chat_api.document_ready(alice, document["id"]))["status"] == "ready"
    session = await chat_api.new_session(alice)
    path = f"/api/v1/chat/sessions/{session['id']}/rag-query"

    groq.script.tokens = ["At ", "21:40."]
    reply = await chat_api.call(
        "POST", path, {"query": "When does the night train leave Vienna?", "k": 2}, token=alice.token
    )
    assert reply.status == 200
    assert reply.body["message"]["content"] == "At 21:40." and reply.body["message"]["status"] == "complete"
    timings = reply.body["timings"]
    assert 0 <= timings["retrieval"] <= timings["first_token"] <= timings["total"]
    top = reply.body["rag_context"]["retrieved_documents"][0]
    assert (top["document_id"], top["page"]) == (document["id"], 2)
    assert len(reply.body["rag_context"]["retrieved_documents"]) <= 2

    groq.script.tokens = [f"s{i} " for i in range(30)]
    async with chat_api.http.post(
        chat_api.base + path,
        json={"query": "Can I bring a bicycle?"},
        headers={**alice.headers, "Accept": "text/event-stream"},
    ) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = (await response.read()).decode()
    events = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1].removeprefix("data: ")))
        for block in raw.strip().split("\n\n")
    ]
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "final" and set(names[1:-1]) == {"token"}
    tokens = [data for name, data in events if name == "token"]
    assert [t["seq"] for t in tokens] == list(range(1, len(tokens) + 1))
    assert "".join(t["delta"] for t in tokens) == events[-1][1]["message"]["content"]
    history = await chat_api.call("GET", f"/api/v1/chat/sessions/{session['id']}/messages", token=alice.token)
    assert [m["message_type"] for m in history.body["items"]] == ["user", "assistant", "user", "assistant"]


async def test_bad_uploads_are_refused(chat_api: Api) -> None:
    alice = await chat_api.register()
    assert (await chat_api.upload(alice, "tool.exe", b"MZ...")).status == 415
    boundary = "xyzBOUNDARY"
    raw = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="../../etc/passwd.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nroot:x:0:0\r\n--{boundary}--\r\n"
    ).encode()
    traversal = await chat_api.call(
        "POST",
        "/api/v1/documents",
        data=raw,
        token=alice.token,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert traversal.status == 202 and traversal.body["filename"] == "passwd.txt"  # never a path
    assert (await chat_api.upload(alice, "empty.txt", b"")).status == 422
    broken = await chat_api.upload(alice, "broken.pdf", b"%PDF-1.4 nonsense")
    assert broken.status == 202
    failed = await chat_api.document_ready(alice, broken.body["id"])
    assert failed["status"] == "failed" and "PDF" in failed["error"]
    json_body = await chat_api.call("POST", "/api/v1/documents", {"file": "x"}, token=alice.token)
    assert json_body.status == 415


async def test_the_offline_default_model_answers_from_a_document(api: Api) -> None:
    """The embedded default: SmolLM2 on llama.cpp generates for real (no key, no network)."""
    alice = await api.register()
    document = (await api.upload(alice, "warranty.md", WARRANTY.encode())).body
    assert (await api.document_ready(alice, document["id"]))["status"] == "ready"
    session = await api.new_session(alice)
    reply = await api.call(
        "POST",
        f"/api/v1/chat/sessions/{session['id']}/rag-query",
        {"query": "How long is the Orbis laptop warranty?"},
        token=alice.token,
    )
    assert reply.status == 200, reply.body
    message, context = reply.body["message"], reply.body["rag_context"]
    assert message["status"] == "complete" and len(message["content"].split()) >= 3
    assert message["tokens_used"] > 0 and context["llm_provider"] == "offline"
    assert context["retrieved_documents"][0]["document_id"] == document["id"]
    assert "two-year warranty" in context["generation_prompt"]


async def test_a_200_page_pdf_ingests_in_the_background_while_chat_goes_on(
    chat_api: Api, groq: GroqFake, connect: Connect
) -> None:
    alice = await chat_api.register()
    pages = [[f"Page {n}: maintenance log entry about pump {n % 17} and valve {n % 23}."] * 12 for n in range(200)]
    uploaded = await chat_api.upload(alice, "manual.pdf", make_pdf(pages))
    assert uploaded.status == 202
    document = uploaded.body
    session = await chat_api.new_session(alice)
    recorder: Recorder = await connect(session["id"], alice.token)
    groq.script.tokens = ["still ", "here"]

    progress: list[int] = []
    answered_while_ingesting = False
    async with asyncio.timeout(120):
        while True:
            state = (await chat_api.call("GET", f"/api/v1/documents/{document['id']}", token=alice.token)).body
            assert "status" in state, state
            if state["status"] == "processing" and state["chunk_count"]:
                progress.append(state["chunks_done"])
                if not answered_while_ingesting:  # a full chat turn while the document is being embedded
                    ack = await recorder.call("user_message", {"content": "are you responsive?"})
                    answer = await recorder.response_for((await recorder.first("assistant_start"))["message_id"])
                    assert ack["ok"] and answer["status"] == "complete"
                    after = (await chat_api.call("GET", f"/api/v1/documents/{document['id']}", token=alice.token)).body
                    answered_while_ingesting = after["status"] == "processing"
            if state["status"] in ("ready", "failed"):
                break
            await asyncio.sleep(0.2)  # within the REST rate limit (600 a minute) however long ingestion takes
    assert state["status"] == "ready" and state["chunks_done"] == state["chunk_count"] >= 200
    assert answered_while_ingesting
    assert len(set(progress)) >= 2 and progress == sorted(progress)  # progress moved, and only forward


async def test_deleting_a_document_while_it_ingests_leaves_no_vectors(chat_server: TestServer, chat_api: Api) -> None:
    """All owners share one collection: a batch stored after the delete would be found by the owner's
    searches, citing a document that no longer exists."""
    alice = await chat_api.register()
    text = "\n\n".join(f"Entry {n}: the pump next to valve {n} was checked and logged. " * 6 for n in range(260))
    uploaded = await chat_api.upload(alice, "log.txt", text.encode())
    assert uploaded.status == 202
    document = uploaded.body
    async with asyncio.timeout(90):
        while True:
            reply = await chat_api.call("GET", f"/api/v1/documents/{document['id']}", token=alice.token)
            assert reply.status == 200, reply.body
            state = reply.body
            if state["status"] == "processing" and state["chunks_done"] > 0:
                break
            assert state["status"] in ("pending", "processing"), state
            await asyncio.sleep(0.2)
    retriever = chat_server.app[keys.RETRIEVER]
    owner = uuid.UUID(alice.id)
    assert await retriever.count(owner) > 0
    deleted = await chat_api.call("DELETE", f"/api/v1/documents/{document['id']}", token=alice.token)
    assert deleted.status == 204
    assert not chat_server.app[keys.INGESTOR].ingesting(uuid.UUID(document["id"]))  # stopped, not running on
    assert await retriever.count(owner) == 0
