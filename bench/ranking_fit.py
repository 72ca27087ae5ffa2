"""Fit the retriever's ranking weights on one half of a task's queries and report on the other.

`prs bench retrieval jira|dell --fit` collects, through the product's own retriever, every
candidate of every query with the features the rank score weighs (agent/retrieve.py:
`ranking_features`), then fits a listwise logistic model, a softmax over each query's candidates
whose target is its relevant entries:

    rank = c_dense * dense_z + c_lexical * lexical_z - c_length * log_length - c_age * log_days

The weights the product uses are these coefficients divided by c_dense. Fit on the even queries
and reported on the odd ones, then the other way round, so a figure never comes from the queries
its weights were fit on; the product's own weights are scored on the same halves beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from agent.retrieve import RankingFeatures, RankingWeights, group_key, rank_scores

TOP_K = 10
L2 = 0.01
STEPS = 600
LEARNING_RATE = 0.5


@dataclass(frozen=True)
class Sample:
    """One query's candidates and which result groups (incident, document) are relevant."""

    features: RankingFeatures
    relevant: frozenset[str]


def _design(features: RankingFeatures) -> np.ndarray:
    """One row per candidate: dense_z, lexical_z, -log_length, -log_days."""
    return np.column_stack(
        [
            np.asarray(features.dense_z, dtype=np.float64),
            np.asarray(features.lexical_z, dtype=np.float64),
            -np.asarray(features.log_length, dtype=np.float64),
            -np.asarray(features.log_days, dtype=np.float64),
        ]
    )


def fit_coefficients(samples: Sequence[Sample], *, use: Sequence[bool] = (True, True, True, True)) -> np.ndarray:
    """Coefficients (dense, lexical, length, age) maximising the softmax likelihood of the relevant
    candidates; a feature with use False stays 0. Deterministic full-batch gradient descent (convex)."""
    rows, targets, starts = [], [], []
    offset = 0
    for sample in samples:
        labels = np.array([group_key(e) in sample.relevant for e in sample.features.entry_ids], dtype=np.float64)
        if not labels.any():
            continue  # nothing relevant among the candidates: no signal for the ranking
        rows.append(_design(sample.features))
        targets.append(labels / labels.sum())
        starts.append(offset)
        offset += len(labels)
    if not rows:
        raise ValueError("no query has a relevant entry among its candidates")
    design, target = np.vstack(rows), np.concatenate(targets)
    segments = np.repeat(np.arange(len(starts)), [len(t) for t in targets])
    mask = np.asarray(use, dtype=np.float64)
    coefficients = np.zeros(design.shape[1])
    for _ in range(STEPS):
        scores = design @ coefficients
        scores -= np.maximum.reduceat(scores, starts)[segments]
        weights = np.exp(scores)
        probabilities = weights / np.add.reduceat(weights, starts)[segments]
        gradient = design.T @ (probabilities - target) / len(starts) + L2 * coefficients
        coefficients -= LEARNING_RATE * gradient * mask
    return coefficients


def weights_from(coefficients: np.ndarray, query_max_tokens: int) -> RankingWeights:
    """The product's form: every weight relative to the dense one."""
    dense = coefficients[0] if coefficients[0] > 1e-9 else 1.0
    return RankingWeights(
        lexical=round(float(coefficients[1] / dense), 3),
        length=round(float(coefficients[2] / dense), 3),
        age=round(float(coefficients[3] / dense), 3),
        query_max_tokens=query_max_tokens,
    )


def ranking_quality(samples: Sequence[Sample], kind: str, weights: RankingWeights) -> dict[str, Any]:
    """recall@10 and MRR@10 of the samples ranked with these weights (chunks pooled per document)."""
    hits = reciprocal = 0.0
    for sample in samples:
        scores = rank_scores(sample.features, {kind: weights})
        best: dict[str, float] = {}
        for entry_id, score in zip(sample.features.entry_ids, scores):
            key = group_key(entry_id)
            best[key] = max(score, best.get(key, -np.inf))
        top = sorted(best, key=lambda key: (-best[key], key))[:TOP_K]
        found = [position for position, key in enumerate(top) if key in sample.relevant]
        if found:
            hits += 1
            reciprocal += 1 / (found[0] + 1)
    count = max(len(samples), 1)
    return {"recall@10": round(hits / count, 4), "mrr@10": round(reciprocal / count, 4), "n": len(samples)}


def cross_validate(
    samples: Sequence[Sample], *, kind: str, product: RankingWeights, use: Sequence[bool] = (True, True, True, True)
) -> dict[str, Any]:
    """Weights fit on each half, scored on the other, beside the product's weights on the same half."""
    halves = {"even": list(samples[0::2]), "odd": list(samples[1::2])}
    report: dict[str, Any] = {"kind": kind, "product_weights": _weights_json(product)}
    for fit_on, score_on in (("even", "odd"), ("odd", "even")):
        fitted = weights_from(fit_coefficients(halves[fit_on], use=use), product.query_max_tokens)
        report[f"fit_{fit_on}_scored_on_{score_on}"] = {
            "weights": _weights_json(fitted),
            "fitted": ranking_quality(halves[score_on], kind, fitted),
            "product": ranking_quality(halves[score_on], kind, product),
        }
    report["fit_on_all"] = _weights_json(weights_from(fit_coefficients(samples, use=use), product.query_max_tokens))
    return report


def _weights_json(weights: RankingWeights) -> dict[str, float]:
    return {"lexical": weights.lexical, "length": weights.length, "age": weights.age}
