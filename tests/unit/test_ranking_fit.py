"""Fitting the ranking weights: the model finds the feature that separates relevant candidates."""

import numpy as np
import pytest

from agent.retrieve import RankingFeatures, RankingWeights
from bench.ranking_fit import Sample, cross_validate, fit_coefficients, ranking_quality, weights_from

rng = np.random.default_rng(7)


def synthetic_sample(number: int, *, relevant_is_recent: bool) -> Sample:
    """30 incident candidates; the relevant one has an ordinary match, but is the most recent."""
    size = 30
    dense_z = rng.normal(size=size)
    lexical_z = rng.normal(size=size)
    log_days = rng.uniform(0.5, 3.0, size=size)
    target = number % size
    if relevant_is_recent:
        log_days[target] = -2.0
    ids = [f"inc:{number * 100 + i}" for i in range(size)]
    features = RankingFeatures(
        entry_ids=ids,
        cosines=[0.5] * size,
        bm25s=[0.5] * size,
        dense_z=list(dense_z),
        lexical_z=list(lexical_z),
        log_length=[0.0] * size,
        log_days=list(log_days),
    )
    return Sample(features=features, relevant=frozenset({ids[target]}))


def test_the_fit_weighs_the_feature_that_predicts_relevance_and_not_the_noise():
    samples = [synthetic_sample(n, relevant_is_recent=True) for n in range(120)]
    coefficients = fit_coefficients(samples)
    dense, lexical, length, age = coefficients
    assert age > 1.0
    assert abs(dense) < 0.5 and abs(lexical) < 0.5 and length == pytest.approx(0.0)


def test_fitted_weights_beat_weights_that_ignore_the_signal_on_the_held_out_half():
    samples = [synthetic_sample(n, relevant_is_recent=True) for n in range(200)]
    report = cross_validate(
        samples, kind="incident", product=RankingWeights(lexical=1.0, length=0.0, age=0.0, query_max_tokens=128)
    )
    for name in ("fit_even_scored_on_odd", "fit_odd_scored_on_even"):
        held_out = report[name]
        assert held_out["fitted"]["recall@10"] > held_out["product"]["recall@10"] + 0.3
        assert held_out["fitted"]["n"] == 100
    assert report["fit_on_all"]["age"] > 0


def test_weights_are_relative_to_the_dense_coefficient():
    weights = weights_from(np.array([2.0, 1.0, 0.5, -1.0]), 256)
    assert (weights.lexical, weights.length, weights.age, weights.query_max_tokens) == (0.5, 0.25, -0.5, 256)


def test_ranking_quality_pools_document_chunks_before_counting():
    features = RankingFeatures(
        entry_ids=["doc:1:0", "doc:1:1", "doc:2:0"],
        cosines=[0.0] * 3,
        bm25s=[0.0] * 3,
        dense_z=[3.0, 2.9, 1.0],
        lexical_z=[0.0] * 3,
        log_length=[0.0] * 3,
        log_days=[0.0] * 3,
    )
    sample = Sample(features=features, relevant=frozenset({"doc:2"}))
    weights = RankingWeights(lexical=0.0, length=0.0, age=0.0, query_max_tokens=256)
    quality = ranking_quality([sample], "document", weights)
    assert quality == {"recall@10": 1.0, "mrr@10": 0.5, "n": 1}


def test_without_any_relevant_candidate_there_is_nothing_to_fit():
    sample = synthetic_sample(1, relevant_is_recent=True)
    empty = Sample(features=sample.features, relevant=frozenset({"inc:999999"}))
    with pytest.raises(ValueError):
        fit_coefficients([empty])
