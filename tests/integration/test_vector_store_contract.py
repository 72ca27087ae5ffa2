"""One contract for both vector stores: the embedded Chroma folder and a Chroma server."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from agent.store import ChromaVectorStore, VectorStoreUnavailable


def unit(*values: float) -> np.ndarray:
    vector = np.zeros(384, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


@pytest.fixture(params=["persistent", "http"])
def store(request, tmp_path):
    collection = f"contract_{uuid.uuid4().hex[:8]}"
    if request.param == "persistent":
        store = ChromaVectorStore.persistent(str(tmp_path / "chroma"), collection)
    else:
        store = ChromaVectorStore.http(request.getfixturevalue("chroma_server_url"), collection)
    store.reset()
    return store


def seed(store):
    store.upsert(
        ["inc:1", "inc:2", "doc:7:0"],
        np.stack([unit(1, 0), unit(1, 1), unit(0, 1)]),
        [
            {"kind": "incident", "area": "production"},
            {"kind": "incident", "area": "it"},
            {"kind": "document", "area": ""},
        ],
    )


def test_query_returns_nearest_ids_with_cosine_similarity(store):
    seed(store)
    results = store.query(unit(1, 0), 3)
    assert [entry_id for entry_id, _ in results] == ["inc:1", "inc:2", "doc:7:0"]
    assert results[0][1] == pytest.approx(1.0, abs=1e-5)
    assert results[1][1] == pytest.approx(np.sqrt(0.5), abs=1e-5)
    assert results[2][1] == pytest.approx(0.0, abs=1e-5)


def test_where_filters_by_equality_and_by_membership(store):
    seed(store)
    assert [i for i, _ in store.query(unit(1, 0), 5, {"kind": "incident", "area": "it"})] == ["inc:2"]
    found = store.query(unit(1, 0), 5, {"kind": ["incident", "document"], "area": ["production", ""]})
    assert [i for i, _ in found] == ["inc:1", "doc:7:0"]


def test_upsert_replaces_and_delete_removes(store):
    seed(store)
    store.upsert(["inc:1"], unit(0, 1)[None, :], [{"kind": "incident", "area": "production"}])
    assert store.count() == 3
    assert store.query(unit(0, 1), 1, {"kind": "incident"})[0][0] == "inc:1"
    store.delete(["inc:1", "inc:404"])
    assert store.count() == 2


def test_reset_empties_the_store(store):
    seed(store)
    store.reset()
    assert store.count() == 0
    assert store.query(unit(1, 0), 3) == []


def test_an_unreachable_server_raises_vector_store_unavailable():
    dead = ChromaVectorStore.http("http://127.0.0.1:9", "prs_knowledge")
    for call in (
        dead.count,
        dead.reset,
        lambda: dead.query(unit(1), 3),
        lambda: dead.delete(["inc:1"]),
        lambda: dead.upsert(["inc:1"], unit(1)[None, :], [{"kind": "incident", "area": "it"}]),
    ):
        with pytest.raises(VectorStoreUnavailable):
            call()


def test_mismatched_lengths_are_a_programming_error(store):
    with pytest.raises(ValueError):
        store.upsert(["inc:1", "inc:2"], unit(1)[None, :], [{"kind": "incident", "area": "it"}])


def test_a_vector_whose_area_changes_is_found_only_in_its_new_area(store):
    seed(store)
    store.upsert(["inc:1"], unit(1, 0)[None, :], [{"kind": "incident", "area": "it"}])
    assert store.count() == 3
    assert [i for i, _ in store.query(unit(1, 0), 5, {"kind": "incident", "area": "production"})] == []
    assert [i for i, _ in store.query(unit(1, 0), 5, {"kind": "incident", "area": "it"})] == ["inc:1", "inc:2"]


def test_any_area_code_makes_a_valid_partition(store):
    store.upsert(["inc:9"], unit(1)[None, :], [{"kind": "incident", "area": "Line-3."}])
    assert [i for i, _ in store.query(unit(1), 1, {"kind": "incident", "area": "Line-3."})] == ["inc:9"]
