"""Score fusion: one score in [0, 1], monotone with the ranking, with one retriever or two."""

import pytest

from agent.retrieve import FusionParams, RetrievalUnavailable, fuse, group_key

PARAMS = FusionParams(candidates=3, lexical_weight=0.5, lexical_floor=0.2)


def test_an_entry_found_by_both_retrievers_beats_one_found_by_one():
    ranked = fuse([("inc:1", 0.6), ("inc:2", 0.6)], [("inc:1", 0.5)], params=PARAMS)
    assert [e.entry_id for e in ranked] == ["inc:1", "inc:2"]


def test_scores_are_in_the_unit_interval_and_sorted():
    ranked = fuse([("inc:1", 1.3), ("inc:2", -0.2), ("inc:3", 0.4)], [("inc:2", 0.9), ("inc:4", 0.1)], params=PARAMS)
    scores = [e.score for e in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_fused_score_is_the_weighted_mean_of_cosine_and_normalised_bm25():
    (entry,) = fuse([("inc:1", 0.6)], [("inc:1", 0.5)], params=PARAMS)
    # lexical 0.5 is the best lexical score, so it normalises to 1.0
    assert entry.score == pytest.approx((0.6 + 0.5 * 1.0) / 1.5)
    assert entry.dense_score == pytest.approx(0.6)
    assert entry.lexical_score == pytest.approx(1.0)


def test_a_weak_best_lexical_match_does_not_earn_the_full_lexical_share():
    (entry,) = fuse([("inc:1", 0.3)], [("inc:1", 0.05)], params=PARAMS)
    assert entry.lexical_score == pytest.approx(0.05 / 0.2)


def test_an_entry_missing_from_a_full_dense_list_gets_its_last_score():
    dense = [("inc:1", 0.9), ("inc:2", 0.8), ("inc:3", 0.7)]  # full: candidates == 3
    ranked = {e.entry_id: e for e in fuse(dense, [("inc:9", 0.4)], params=PARAMS)}
    assert ranked["inc:9"].dense_score is None
    assert ranked["inc:9"].score == pytest.approx((0.7 + 0.5 * 1.0) / 1.5)


def test_without_the_vector_store_the_score_is_the_lexical_one():
    ranked = fuse(None, [("inc:1", 0.6), ("inc:2", 0.3)], params=PARAMS)
    assert [(e.entry_id, e.score) for e in ranked] == [("inc:1", 1.0), ("inc:2", 0.5)]
    assert all(e.dense_score is None for e in ranked)


def test_without_the_lexical_index_the_score_is_the_cosine():
    ranked = fuse([("inc:1", 0.7)], None, params=PARAMS)
    assert ranked[0].score == pytest.approx(0.7)


def test_with_neither_retriever_retrieval_is_unavailable():
    with pytest.raises(RetrievalUnavailable):
        fuse(None, None, params=PARAMS)


def test_a_document_counts_once_with_its_best_chunk():
    ranked = fuse([("doc:4:0", 0.3), ("doc:4:2", 0.8), ("inc:1", 0.5)], [], params=PARAMS)
    assert [e.entry_id for e in ranked] == ["doc:4:2", "inc:1"]


def test_group_key_joins_the_chunks_of_a_document_only():
    assert group_key("doc:45:2") == group_key("doc:45:0") == "doc:45"
    assert group_key("inc:45") == "inc:45"
