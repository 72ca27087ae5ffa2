"""Score fusion and ranking: a match score in [0, 1] for people, an order from z-scores and priors."""

from datetime import datetime, timedelta, timezone

import pytest

from agent.retrieve import (
    LEARNED_WEIGHTS_PAIRS,
    EntryFacts,
    FusionParams,
    RankingWeights,
    RetrievalUnavailable,
    fuse,
    group_key,
)

PARAMS = FusionParams(candidates=3, lexical_weight=0.5, lexical_floor=0.2)
# The product's settings: 100 candidates, so the short lists below stand for a small knowledge base.
PRODUCT = FusionParams()
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)


def test_an_entry_found_by_both_retrievers_beats_one_found_by_one():
    ranked = fuse([("inc:1", 0.6), ("inc:2", 0.6)], [("inc:1", 0.5)], params=PARAMS)
    assert [e.entry_id for e in ranked] == ["inc:1", "inc:2"]


def test_scores_are_in_the_unit_interval_and_the_order_follows_the_rank_score():
    ranked = fuse([("inc:1", 1.3), ("inc:2", -0.2), ("inc:3", 0.4)], [("inc:2", 0.9), ("inc:4", 0.1)], params=PARAMS)
    assert all(0.0 <= e.score <= 1.0 for e in ranked)
    ranks = [e.rank_score for e in ranked]
    assert ranks == sorted(ranks, reverse=True)


def test_the_rank_score_weighs_each_retriever_by_its_standardised_score():
    # inc:1 leads the dense list by far; inc:2 leads the lexical list by a little: dense wins.
    dense = [("inc:1", 0.9), ("inc:2", 0.5), ("inc:3", 0.5), ("inc:4", 0.5)]
    lexical = [("inc:2", 0.6), ("inc:1", 0.55), ("inc:3", 0.5), ("inc:4", 0.5)]
    ranked = fuse(dense, lexical, params=FusionParams(candidates=4))
    assert [e.entry_id for e in ranked][:2] == ["inc:1", "inc:2"]
    # Weighted the other way round, the lexical lead decides.
    lexical_first = FusionParams(
        candidates=4,
        weights={"incident": RankingWeights(lexical=10.0, length=0.0, age=0.0, query_max_tokens=128)},
    )
    assert fuse(dense, lexical, params=lexical_first)[0].entry_id == "inc:2"


def test_of_two_equal_matches_the_incident_reported_closer_in_time_ranks_first():
    dense = [("inc:1", 0.8), ("inc:2", 0.8), ("inc:3", 0.2)]
    lexical = [("inc:1", 0.5), ("inc:2", 0.5)]
    facts = {
        "inc:1": EntryFacts(length=50, created_at=NOW - timedelta(days=700)),
        "inc:2": EntryFacts(length=50, created_at=NOW - timedelta(days=2)),
        "inc:3": EntryFacts(length=50, created_at=NOW - timedelta(days=1)),
    }
    ranked = fuse(dense, lexical, params=PRODUCT, facts=facts, at=NOW)
    # The recent duplicate first; the old one still above a poor match from yesterday.
    assert [e.entry_id for e in ranked] == ["inc:2", "inc:1", "inc:3"]
    assert ranked[0].score == ranked[1].score  # the shown match is the text's, not the date's
    # Without the query's time there is no age to weigh: the id breaks the tie.
    assert [e.entry_id for e in fuse(dense, lexical, params=PRODUCT, facts=facts)][:2] == ["inc:1", "inc:2"]


def test_the_age_prior_also_counts_incidents_reported_after_the_query_time():
    dense = [("inc:1", 0.8), ("inc:2", 0.8)]
    facts = {
        "inc:1": EntryFacts(length=50, created_at=NOW + timedelta(days=400)),
        "inc:2": EntryFacts(length=50, created_at=NOW + timedelta(days=3)),
    }
    assert fuse(dense, [], params=PRODUCT, facts=facts, at=NOW)[0].entry_id == "inc:2"


def test_of_two_equal_document_matches_the_shorter_chunk_ranks_first():
    dense = [("doc:1:0", 0.7), ("doc:2:0", 0.7)]
    facts = {"doc:1:0": EntryFacts(length=400, created_at=NOW), "doc:2:0": EntryFacts(length=40, created_at=NOW)}
    assert fuse(dense, [], params=PRODUCT, facts=facts, at=NOW)[0].entry_id == "doc:2:0"


def test_documents_have_no_age_prior():
    dense = [("doc:1:0", 0.7), ("doc:2:0", 0.7)]
    facts = {
        "doc:1:0": EntryFacts(length=40, created_at=NOW - timedelta(days=900)),
        "doc:2:0": EntryFacts(length=40, created_at=NOW),
    }
    ranked = {e.entry_id: e.rank_score for e in fuse(dense, [], params=PRODUCT, facts=facts, at=NOW)}
    assert ranked["doc:1:0"] == ranked["doc:2:0"]


def test_priors_reorder_within_a_kind_but_do_not_lift_one_kind_over_the_other():
    # Every incident is old, every document long: each kind's mean prior is zero, so the best
    # incident and the best document keep the order of their text match.
    dense = [("inc:1", 0.9), ("inc:2", 0.5), ("doc:3:0", 0.8), ("doc:4:0", 0.5)]
    facts = {
        "inc:1": EntryFacts(length=50, created_at=NOW - timedelta(days=3000)),
        "inc:2": EntryFacts(length=50, created_at=NOW - timedelta(days=3000)),
        "doc:3:0": EntryFacts(length=2000, created_at=NOW),
        "doc:4:0": EntryFacts(length=2000, created_at=NOW),
    }
    plain = [e.entry_id for e in fuse(dense, [], params=PRODUCT)]
    assert [e.entry_id for e in fuse(dense, [], params=PRODUCT, facts=facts, at=NOW)] == plain


def test_entries_without_facts_are_ranked_by_their_match_alone():
    dense = [("inc:1", 0.9), ("inc:2", 0.3)]
    facts = {"inc:2": EntryFacts(length=10, created_at=NOW)}
    assert [e.entry_id for e in fuse(dense, [], params=PRODUCT, facts=facts, at=NOW)] == ["inc:1", "inc:2"]


def test_the_query_is_embedded_as_long_as_the_shortest_setting_of_the_kinds_searched():
    params = FusionParams()
    assert params.query_max_tokens(["document"]) == 256
    assert params.query_max_tokens(["incident"]) == 128
    assert params.query_max_tokens(["incident", "document"]) == 128


def test_an_encoder_that_learned_no_confirmed_matches_ranks_with_the_configured_weights():
    assert PRODUCT.for_encoder(0) is PRODUCT


def test_an_encoder_that_learned_enough_confirmed_matches_ranks_with_the_learned_weights():
    for count in (LEARNED_WEIGHTS_PAIRS, 5 * LEARNED_WEIGHTS_PAIRS):
        assert PRODUCT.for_encoder(count).weights == PRODUCT.learned_weights
    # Documents: dense retrieval gets a larger share once the encoder learned how people ask.
    assert PRODUCT.learned_weights["document"].lexical < PRODUCT.weights["document"].lexical


def test_fewer_learned_matches_move_the_weights_part_of_the_way_and_only_once():
    half = PRODUCT.for_encoder(LEARNED_WEIGHTS_PAIRS // 2 + LEARNED_WEIGHTS_PAIRS % 2)
    configured, learned, between = (p["document"] for p in (PRODUCT.weights, PRODUCT.learned_weights, half.weights))
    share = (LEARNED_WEIGHTS_PAIRS // 2 + LEARNED_WEIGHTS_PAIRS % 2) / LEARNED_WEIGHTS_PAIRS
    assert between.lexical == pytest.approx(configured.lexical + share * (learned.lexical - configured.lexical))
    assert between.length == pytest.approx(configured.length + share * (learned.length - configured.length))
    assert learned.lexical < between.lexical < configured.lexical
    # Asking again of the derived parameters does not move them further.
    assert half.for_encoder(LEARNED_WEIGHTS_PAIRS).weights == half.weights


def test_the_learned_weights_change_the_order_the_configured_ones_give():
    # doc:1 leads the lexical list, doc:2 the dense one; the learned weights trust the dense more.
    dense = [("doc:1:0", 0.60), ("doc:2:0", 0.82), ("doc:3:0", 0.40), ("doc:4:0", 0.40), ("doc:5:0", 0.40)]
    lexical = [("doc:1:0", 0.90), ("doc:2:0", 0.45), ("doc:3:0", 0.30), ("doc:4:0", 0.30), ("doc:5:0", 0.30)]
    configured = FusionParams(candidates=5)
    learned = configured.for_encoder(LEARNED_WEIGHTS_PAIRS)
    assert fuse(dense, lexical, params=configured)[0].entry_id == "doc:1:0"
    assert fuse(dense, lexical, params=learned)[0].entry_id == "doc:2:0"


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


def test_without_the_vector_store_the_score_and_the_order_are_the_lexical_ones():
    ranked = fuse(None, [("inc:2", 0.3), ("inc:1", 0.6)], params=PARAMS)
    assert [(e.entry_id, e.score) for e in ranked] == [("inc:1", 1.0), ("inc:2", 0.5)]
    assert all(e.dense_score is None for e in ranked)


def test_without_the_lexical_index_the_score_is_the_cosine_and_orders_the_results():
    ranked = fuse([("inc:2", 0.4), ("inc:1", 0.7)], None, params=PARAMS)
    assert [(e.entry_id, e.score) for e in ranked] == [("inc:1", 0.7), ("inc:2", 0.4)]


def test_with_neither_retriever_retrieval_is_unavailable():
    with pytest.raises(RetrievalUnavailable):
        fuse(None, None, params=PARAMS)


def test_a_document_counts_once_with_its_best_chunk():
    ranked = fuse([("doc:4:0", 0.3), ("doc:4:2", 0.8), ("inc:1", 0.5)], [], params=PARAMS)
    assert [e.entry_id for e in ranked] == ["doc:4:2", "inc:1"]


def test_group_key_joins_the_chunks_of_a_document_only():
    assert group_key("doc:45:2") == group_key("doc:45:0") == "doc:45"
    assert group_key("inc:45") == "inc:45"
