"""Retrieval quality and retriever behaviour on real embeddings and the embedded Qdrant Edge shard."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client import QdrantClient

from pipelines.rag.embedder import Embedder
from pipelines.rag.extract import Page, extract
from pipelines.rag.retrieval import Retriever, SearchOptions
from pipelines.rag.vectors import create_vector_store
from pipelines.rag.vectors.server import ServerStore
from tests.pipelines.rag_corpus import DOCUMENTS, QUESTIONS

pytestmark = pytest.mark.slow  # loads the bundled embedding model

OWNER = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
IDS = {name: uuid.uuid5(OWNER, name) for name in DOCUMENTS}


@pytest.fixture(scope="module", params=["int8", "shipped"])
async def embedder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The model as Parley runs it by default (its int8 copy) and as shipped: quality must hold for both."""
    cache = tmp_path_factory.mktemp("models") if request.param == "int8" else None
    model = Embedder(int8_cache=cache)
    await model.load()
    return model


@pytest.fixture(scope="module")
async def corpus(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Retriever]:
    store = await asyncio.to_thread(create_vector_store, embedder.dimensions, path=tmp_path_factory.mktemp("qdrant"))
    retriever = Retriever(embedder, store)
    for name, text in DOCUMENTS.items():
        await retriever.ingest(OWNER, IDS[name], name, extract(name, text.encode()))
    yield retriever
    await retriever.close()


async def _recall_at_5(retriever: Retriever, hybrid: bool) -> float:
    found = 0
    for question, answer in QUESTIONS:
        hits = await retriever.search(OWNER, question, SearchOptions(k=5, hybrid=hybrid))
        found += any(hit.document_id == IDS[answer] for hit in hits)
    return found / len(QUESTIONS)


async def test_hybrid_recall_at_5_is_high_and_not_below_dense(corpus: Retriever) -> None:
    assert len(DOCUMENTS) >= 20 and len(QUESTIONS) >= 40
    hybrid, dense = await _recall_at_5(corpus, True), await _recall_at_5(corpus, False)
    print(f"\nrecall@5 over {len(QUESTIONS)} questions: hybrid {hybrid:.3f}, dense-only {dense:.3f}")
    assert hybrid >= 0.9
    assert hybrid >= dense


async def test_top_hit_cites_document_page_and_heading(corpus: Retriever) -> None:
    hits = await corpus.search(OWNER, "Is water damage covered for Vela phones?", SearchOptions(k=3))
    top = hits[0]
    assert top.document_id == IDS["phone-warranty.md"] and top.document_name == "phone-warranty.md"
    assert top.heading == "Claims" and "Water damage" in top.text


async def test_search_is_scoped_to_the_owner_and_to_chosen_documents(corpus: Retriever) -> None:
    assert await corpus.search(uuid.uuid4(), "laptop warranty") == []
    only = (IDS["sourdough.md"],)
    hits = await corpus.search(OWNER, "laptop warranty", SearchOptions(k=5, document_ids=only))
    assert hits and {h.document_id for h in hits} == {IDS["sourdough.md"]}


async def test_embeddings_are_normalised_and_meaningful(embedder: Embedder) -> None:
    vectors = await embedder.embed(["A cat sleeps on the sofa.", "A kitten naps on the couch.", "Tax returns are due."])
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


async def test_deleting_a_document_and_an_owner(embedder: Embedder, tmp_path: Path) -> None:
    retriever = Retriever(embedder, await asyncio.to_thread(create_vector_store, embedder.dimensions, path=tmp_path))
    owner, keep, drop = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await retriever.ingest(owner, keep, "keep.txt", [Page("Alpha beta gamma. " * 50)])
    await retriever.ingest(owner, drop, "drop.txt", [Page("Delta epsilon zeta. " * 50)])
    assert await retriever.count(owner, drop) > 0
    await retriever.delete_document(owner, drop)
    assert await retriever.count(owner, drop) == 0 and await retriever.count(owner, keep) > 0
    await retriever.delete_owner(owner)
    assert await retriever.count(owner) == 0
    await retriever.close()


async def test_the_server_path_through_the_retriever(embedder: Embedder) -> None:
    """QDRANT_URL's code path (ServerStore), driven through qdrant-client's local mode: ingest, owner
    isolation, a session scope, a delete by filter."""
    store = await asyncio.to_thread(
        lambda: ServerStore(QdrantClient(":memory:"), embedder.dimensions, payload_indexes=False)
    )
    retriever = Retriever(embedder, store)
    alice, bob, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    laptop, bread, bobs = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await retriever.ingest(alice, laptop, "laptop.md", extract("laptop.md", DOCUMENTS["laptop-warranty.md"].encode()))
    await retriever.ingest(
        alice, bread, "sourdough.md", extract("sourdough.md", DOCUMENTS["sourdough.md"].encode()), session_id=session
    )
    await retriever.ingest(bob, bobs, "bob.md", extract("bob.md", DOCUMENTS["laptop-warranty.md"].encode()))
    hits = await retriever.search(alice, "How long is the laptop warranty?", SearchOptions(k=10))
    assert hits[0].document_id == laptop and {h.document_id for h in hits} <= {laptop, bread}
    other = await retriever.search(alice, "sourdough starter", SearchOptions(k=10, session_id=uuid.uuid4()))
    assert other and {h.document_id for h in other} == {laptop}  # another session's document is out of scope
    await retriever.delete_owner(alice)
    assert await retriever.count(alice) == 0 and await retriever.count(bob) > 0
    await retriever.close()


async def test_a_session_sees_the_library_and_its_own_documents_not_another_sessions(corpus: Retriever) -> None:
    owner, session_a, session_b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    library, in_a, in_b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    texts = {
        library: "The office wifi password is lantern-42.",
        in_a: "The access code on the screenshot is 4821-ZEBRA.",
        in_b: "The access code on the other screenshot is 7730-OTTER.",
    }
    for document_id, session in ((library, None), (in_a, session_a), (in_b, session_b)):
        name = f"{document_id}.txt"
        await corpus.ingest(owner, document_id, name, extract(name, texts[document_id].encode()), session_id=session)

    async def found(query: str, **options: object) -> set[uuid.UUID]:
        return {hit.document_id for hit in await corpus.search(owner, query, SearchOptions(k=5, **options))}  # type: ignore[arg-type]

    assert await found("what is the access code?", session_id=session_a) == {library, in_a}
    assert await found("what is the access code?", session_id=session_b) == {library, in_b}
    assert await found("access code", session_id=session_a, document_ids=(in_b, library)) == {library}
    assert await found("access code", hybrid=False, session_id=session_b) == {library, in_b}


async def test_a_prepared_query_is_searched_with_the_vector_embedded_ahead(
    corpus: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    question, other = "Is water damage covered for Vela phones?", "How do I feed a sourdough starter?"
    expected = await corpus.search(OWNER, question)
    embedded: list[list[str]] = []
    embed = corpus.embedder.embed_blocking

    def counted(texts: Sequence[str]) -> npt.NDArray[np.float32]:
        embedded.append(list(texts))
        return embed(texts)

    monkeypatch.setattr(corpus.embedder, "embed_blocking", counted)
    corpus.prepare(question)
    assert await corpus.search(OWNER, question) == expected
    assert await corpus.search(OWNER, question) == expected  # a prepared vector serves one search
    await corpus.search(OWNER, other)  # nothing prepared: the search embeds its query
    assert embedded == [[question], [question], [other]]
