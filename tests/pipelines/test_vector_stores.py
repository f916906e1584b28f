"""What Parley relies on in both vector engines: the Qdrant Edge shard (embedded default, beta: pinned)
and the server path through qdrant-client (driven here by its local mode, the same client API)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from qdrant_client import QdrantClient

from pipelines.rag.sparse import document_vector, query_vector
from pipelines.rag.vectors import Query, Scope, StoredChunk, VectorStore, create_vector_store
from pipelines.rag.vectors.edge import EdgeStore
from pipelines.rag.vectors.server import ServerStore

DIMS = 8


def _open(kind: str, path: Path) -> VectorStore:
    if kind == "edge":
        return create_vector_store(DIMS, path=path / "shard")
    return ServerStore(QdrantClient(path=str(path / "local")), DIMS, payload_indexes=False)


@pytest.fixture(params=["edge", "server"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path) -> Iterator[VectorStore]:
    opened = _open(kind, tmp_path)
    yield opened
    opened.close()


def _axis(i: int) -> npt.NDArray[np.float32]:
    vector = np.zeros(DIMS, dtype=np.float32)
    vector[i % DIMS] = 1.0
    return vector


def _put(store: VectorStore, owner: uuid.UUID, document: uuid.UUID, texts: list[str], **kw: object) -> None:
    chunks = [StoredChunk(document, f"{document}.txt", i, t, **kw) for i, t in enumerate(texts)]  # type: ignore[arg-type]
    dense = np.stack([_axis(i) for i in range(len(texts))])
    store.upsert(owner, chunks, dense, [document_vector(t) for t in texts])


def _query(text: str, axis: int = 0, *, hybrid: bool = True, k: int = 5) -> Query:
    return Query(_axis(axis), query_vector(text), k=k, hybrid=hybrid)


def test_dense_sparse_and_hybrid_search_rank_the_right_chunk(store: VectorStore) -> None:
    owner, document = uuid.uuid4(), uuid.uuid4()
    _put(store, owner, document, ["alpha pump", "bravo valve", "charlie seal", "delta gasket"])
    dense = store.search(Scope(owner), _query("nothing matches", axis=2, hybrid=False))
    assert dense[0].text == "charlie seal" and dense[0].score == pytest.approx(1.0, abs=1e-4)
    keyword = store.search(Scope(owner), Query(np.zeros(DIMS, np.float32) + 0.1, query_vector("gasket"), k=1))
    assert [h.text for h in keyword] == ["delta gasket"]  # the sparse side of the fusion finds it
    # dense says chunk 1, keywords say chunk 3: RRF ranks both in the top two
    fused = store.search(Scope(owner), _query("gasket", axis=1, k=2))
    assert {h.text for h in fused} == {"bravo valve", "delta gasket"}
    assert dense[0].document_name == f"{document}.txt" and dense[0].chunk_index == 2


def test_every_search_is_scoped_to_its_owner_and_documents(store: VectorStore) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    a1, a2, b1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    _put(store, alice, a1, ["alice pump manual", "alice seal notes"])
    _put(store, alice, a2, ["alice valve sheet"])
    _put(store, bob, b1, ["bob pump manual", "bob seal notes", "bob valve sheet"])
    for hybrid in (True, False):
        hits = store.search(Scope(alice), _query("pump manual", hybrid=hybrid, k=10))
        assert {h.document_id for h in hits} == {a1, a2}
        only = store.search(Scope(alice, (a2,)), _query("pump manual", hybrid=hybrid, k=10))
        assert [h.document_id for h in only] == [a2]
        assert store.search(Scope(alice, (b1,)), _query("pump", hybrid=hybrid)) == []  # bob's document
        assert store.search(Scope(uuid.uuid4()), _query("pump", hybrid=hybrid)) == []
    assert store.count(Scope(alice)) == 3 and store.count(Scope(bob)) == 3 and store.count(Scope(alice, (a1,))) == 2


def test_a_session_scope_is_the_library_plus_that_session(store: VectorStore) -> None:
    owner, session, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    library, attached, elsewhere = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    _put(store, owner, library, ["library pump"])
    _put(store, owner, attached, ["attached pump"], session_id=session)
    _put(store, owner, elsewhere, ["elsewhere pump"], session_id=other)
    scoped = store.search(Scope(owner, session_id=session), _query("pump", k=10))
    assert {h.document_id for h in scoped} == {library, attached}
    assert len(store.search(Scope(owner), _query("pump", k=10))) == 3


def test_delete_by_filter_removes_a_document_then_an_owner(store: VectorStore) -> None:
    alice, bob, keep, drop, theirs = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    _put(store, alice, keep, ["keep one", "keep two"])
    _put(store, alice, drop, ["drop one", "drop two", "drop three"])
    _put(store, bob, theirs, ["bob one"])
    store.delete(Scope(alice, (drop,)))
    assert store.count(Scope(alice, (drop,))) == 0 and store.count(Scope(alice, (keep,))) == 2
    assert all(h.document_id == keep for h in store.search(Scope(alice), _query("drop one", k=10)))
    store.delete(Scope(alice))
    assert store.count(Scope(alice)) == 0 and store.count(Scope(bob)) == 1


def test_re_upserting_a_document_overwrites_its_chunks(store: VectorStore) -> None:
    owner, document = uuid.uuid4(), uuid.uuid4()
    _put(store, owner, document, ["old text zero", "old text one"])
    _put(store, owner, document, ["new text zero", "new text one"])
    assert store.count(Scope(owner)) == 2
    assert {h.text for h in store.search(Scope(owner), _query("text", k=5))} == {"new text zero", "new text one"}


def test_points_survive_flush_close_and_reopen(kind: str, tmp_path: Path) -> None:
    owner, document = uuid.uuid4(), uuid.uuid4()
    first = _open(kind, tmp_path)
    _put(first, owner, document, ["persisted pump", "persisted seal"])
    first.flush()
    first.optimize()
    first.close()
    again = _open(kind, tmp_path)
    try:
        assert again.count(Scope(owner)) == 2
        assert again.search(Scope(owner), _query("seal", axis=1, k=1))[0].text == "persisted seal"
    finally:
        again.close()


def test_the_edge_shard_keeps_its_tenant_and_keyword_indexes(tmp_path: Path) -> None:
    store = EdgeStore.open(tmp_path / "shard", DIMS)
    try:
        schema = store.shard.info().payload_schema
        assert {"owner_id", "document_id", "session_id"} <= set(schema)
    finally:
        store.close()


def test_a_second_process_cannot_open_the_same_shard(tmp_path: Path) -> None:
    store = EdgeStore.open(tmp_path / "shard", DIMS)
    try:
        with pytest.raises(RuntimeError, match="open in another process"):
            EdgeStore.open(tmp_path / "shard", DIMS)
    finally:
        store.close()
    EdgeStore.open(tmp_path / "shard", DIMS).close()  # released on close


def test_concurrent_searches_while_another_thread_upserts_and_optimizes(tmp_path: Path) -> None:
    store = EdgeStore.open(tmp_path / "shard", DIMS)
    owner, rng = uuid.uuid4(), np.random.default_rng(5)
    errors: list[BaseException] = []
    written = threading.Event()

    def write() -> None:
        try:
            for batch in range(40):
                document = uuid.uuid4()
                chunks = [StoredChunk(document, "d", i, f"pump {batch} {i}") for i in range(25)]
                dense = rng.standard_normal((25, DIMS)).astype(np.float32)
                store.upsert(owner, chunks, dense, [document_vector(c.text) for c in chunks])
                if batch % 10 == 9:
                    store.optimize()
            store.flush()
        except BaseException as exc:
            errors.append(exc)
        finally:
            written.set()

    def read() -> None:
        try:
            while not written.is_set():
                hits = store.search(Scope(owner), _query("pump", axis=3, k=5))
                assert all(h.text.startswith("pump") for h in hits)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    try:
        assert not errors, errors
        assert store.count(Scope(owner)) == 40 * 25
        assert len(store.search(Scope(owner), _query("pump", k=5))) == 5
    finally:
        store.close()
