"""Hybrid retrieval: dense (embeddings in the vector store) + lexical (BM25), fused and ranked.

Two numbers come out for each entry:

- `score`, the match shown to people and cut by `min_score`: in [0, 1],

      score = (max(cosine, 0) + lexical_weight * lexical) / (1 + lexical_weight)

  where `lexical` is the entry's BM25 score divided by the larger of (a) the best BM25 score
  among the candidates and (b) `lexical_floor` times the most the query could score. (b) keeps a
  weak lexical match from earning the full lexical share just because it is the best of a bad
  lot, so the score stays comparable across queries and a minimum-score cut means something.

- `rank_score`, the order of the results: each retriever's score standardised over this query's
  candidates (z-scores: how far above this query's typical candidate an entry stands, which
  weighs the two retrievers by how clearly each separates its candidates), plus two priors
  learned on the evaluation tasks (fit on one half of the queries, checked on the other):

      rank_score = z(cosine) + weights.lexical * z(bm25)
                   - weights.length * log(1 + entry tokens)
                   - weights.age * log(1 + days between the entry and the query)

  Duplicate incidents are reported close together in time (one fault, several reports), and
  among documents a short, specific answer beats a long one that mentions everything. Each
  prior is taken relative to the other candidates of the same kind, so it reorders entries
  within their kind and never lifts one kind over the other.

Candidates are the top `candidates` of each retriever; an entry seen by one retriever only gets
the other's weakest listed score when that list was full (its true score is at most that), else 0.
Document chunks are max-pooled: a document is as good as its best chunk.
Measured choices and figures: docs/knowledge.md and docs/performance.md.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol, Sequence

from agent.embeddings import Encoder
from agent.lexical import tokenize
from agent.store import Scalar, VectorStore, VectorStoreUnavailable
from agent.types import ScoredEntry

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400.0


class LexicalIndex(Protocol):
    """Where BM25 runs (the backend's Postgres postings)."""

    async def search(
        self, terms: list[str], *, k: int, area: str | None, kinds: Sequence[str]
    ) -> list[tuple[str, float]]:
        """(entry_id, score in [0, 1]) best first: BM25 divided by the most this query could score."""


@dataclass(frozen=True)
class EntryFacts:
    """What the ranking priors need to know of a candidate (its kind is in its id)."""

    length: int  # tokens indexed for BM25
    created_at: datetime | None


class EntryCatalog(Protocol):
    """Where the facts of entries are kept (the backend's knowledge_entries)."""

    async def facts(self, entry_ids: Sequence[str]) -> dict[str, EntryFacts]:
        """Facts of those entries that exist, by entry id."""


class RetrievalUnavailable(Exception):
    """Neither the vector store nor the lexical index answered."""


@dataclass(frozen=True)
class RankingWeights:
    """How one kind of entry is ranked: weights against the dense z-score (weight 1)."""

    lexical: float
    length: float
    age: float
    # Word pieces of the query that are embedded when this kind is searched.
    query_max_tokens: int


def _default_weights() -> dict[str, RankingWeights]:
    # `prs bench retrieval jira|dell --fit` (bench/ranking_fit.py), fit_on_all, rounded: a listwise
    # logistic model over the product's own candidates. Fit on one half and scored on the other, these
    # weights beat the hand-set ones before them on both halves of JIRA and on one of Dell's
    # (docs/performance.md). Incidents: the query embedded from its first 128 word pieces (better than
    # 256 on JIRA); documents: 256 (the long forum questions of DellQA), no age (a document's date is
    # its upload).
    return {
        "incident": RankingWeights(lexical=1.04, length=0.44, age=1.26, query_max_tokens=128),
        "document": RankingWeights(lexical=0.8, length=0.89, age=0.0, query_max_tokens=256),
    }


def _learned_weights() -> dict[str, RankingWeights]:
    # For an encoder that learned confirmed matches (prs knowledge adapt with pairs): dense retrieval
    # is then much better than the bundled encoder's, and deserves a larger share. Documents:
    # `prs bench retrieval dell --learn --fit`, `learn.fit.fit_on_all` (weights fit on scores of
    # queries the scoring encoder never learned; docs/performance.md). Incidents: not measured with
    # learned encoders yet, so the bundled encoder's weights.
    return _default_weights() | {
        "document": RankingWeights(lexical=0.569, length=0.458, age=0.0, query_max_tokens=256),
    }


# The number of confirmed matches the learned weights were fit with (half of DellQA's questions).
LEARNED_WEIGHTS_PAIRS = 475


def _between(start: RankingWeights, end: RankingWeights, share: float) -> RankingWeights:
    """The weights `share` of the way from start to end (the query length of end)."""
    return RankingWeights(
        lexical=start.lexical + share * (end.lexical - start.lexical),
        length=start.length + share * (end.length - start.length),
        age=start.age + share * (end.age - start.age),
        query_max_tokens=end.query_max_tokens,
    )


@dataclass(frozen=True)
class FusionParams:
    """Tunables of retrieval and fusion; the defaults are the measured best (docs/knowledge.md)."""

    candidates: int = 100
    lexical_weight: float = 0.5
    lexical_floor: float = 0.2
    weights: dict[str, RankingWeights] = field(default_factory=_default_weights)
    # The weights for an encoder that learned LEARNED_WEIGHTS_PAIRS confirmed matches or more.
    learned_weights: dict[str, RankingWeights] = field(default_factory=_learned_weights)

    def query_max_tokens(self, kinds: Sequence[str]) -> int:
        """Word pieces of the query to embed when searching these kinds (one encoding per search)."""
        return min(self.weights[kind].query_max_tokens for kind in kinds)

    def for_encoder(self, learned_matches: int) -> FusionParams:
        """The parameters to rank with for an encoder trained on `learned_matches` confirmed matches.

        None: these. As many as the learned weights were fit with, or more: those. In between, the
        weights move from these to the learned ones in proportion, as the encoder moves from the one
        these were fit with towards the one the learned ones were fit with.
        """
        share = min(1.0, max(0, learned_matches) / LEARNED_WEIGHTS_PAIRS)
        if share == 0.0:
            return self
        weights = {kind: _between(self.weights[kind], self.learned_weights[kind], share) for kind in self.weights}
        return replace(self, weights=weights, learned_weights=weights)


def group_key(entry_id: str) -> str:
    """Entries that count as one result: the chunks of a document ('doc:45:2' -> 'doc:45')."""
    if entry_id.startswith("doc:"):
        return entry_id.rsplit(":", 1)[0]
    return entry_id


def kind_of(entry_id: str) -> str:
    """The kind an entry id names (document chunks are 'doc:<document>:<chunk>')."""
    return "document" if entry_id.startswith("doc:") else "incident"


def _standardised(values: list[float], *, population: int, fill: float) -> list[float]:
    """z-scores of the values among `population` candidates, those not listed scoring `fill`.

    A short list (a small knowledge base) is standardised as if it had its full length, the rest
    at the fill: three candidates alone would spread over barely one standard deviation, and a
    prior would then outweigh even an exact match.
    """
    missing = max(population - len(values), 0)
    count = len(values) + missing
    mean = (sum(values) + missing * fill) / count
    variance = (sum((value - mean) ** 2 for value in values) + missing * (fill - mean) ** 2) / count
    spread = math.sqrt(variance)
    if spread <= 1e-12:
        return [0.0] * len(values)
    return [(value - mean) / spread for value in values]


@dataclass(frozen=True)
class RankingFeatures:
    """What the rank score weighs, per candidate entry (same order as entry_ids).

    rank_score = dense_z + w_lexical * lexical_z - w_length * log_length - w_age * log_days, each prior
    feature centred on the mean of its kind's candidates (0 where an entry's facts are unknown).
    """

    entry_ids: list[str]
    cosines: list[float]  # the dense score used, the fill for an entry the dense list missed
    bm25s: list[float]  # likewise for the lexical list
    dense_z: list[float]
    lexical_z: list[float]
    log_length: list[float]
    log_days: list[float]


def _centred_by_kind(entry_ids: list[str], values: list[float | None]) -> list[float]:
    """Each known value minus the mean of its kind's known values; 0 for an unknown one."""
    by_kind: dict[str, list[float]] = {}
    for entry_id, value in zip(entry_ids, values):
        if value is not None:
            by_kind.setdefault(kind_of(entry_id), []).append(value)
    means = {kind: sum(known) / len(known) for kind, known in by_kind.items()}
    return [0.0 if value is None else value - means[kind_of(entry_id)] for entry_id, value in zip(entry_ids, values)]


def ranking_features(
    dense: Sequence[tuple[str, float]] | None,
    lexical: Sequence[tuple[str, float]] | None,
    *,
    candidates: int,
    facts: dict[str, EntryFacts] | None = None,
    at: datetime | None = None,
) -> RankingFeatures:
    """The features of every candidate of either list (None: that retriever did not answer)."""
    dense_scores = {entry_id: max(0.0, min(1.0, score)) for entry_id, score in dense or ()}
    lexical_scores = dict(lexical or ())
    # An entry missing from a full list scored at most that list's last score.
    dense_fill = min(dense_scores.values()) if len(dense_scores) >= candidates else 0.0
    lexical_fill = min(lexical_scores.values()) if len(lexical_scores) >= candidates else 0.0
    entry_ids = sorted(dense_scores.keys() | lexical_scores.keys())
    cosines = [dense_scores.get(entry_id, dense_fill) for entry_id in entry_ids]
    bm25s = [lexical_scores.get(entry_id, lexical_fill) for entry_id in entry_ids]
    zeros = [0.0] * len(entry_ids)
    known = facts or {}
    lengths: list[float | None] = []
    days: list[float | None] = []
    for entry_id in entry_ids:
        fact = known.get(entry_id)
        lengths.append(None if fact is None else math.log1p(max(fact.length, 0)))
        if fact is None or fact.created_at is None or at is None:
            days.append(None)
        else:
            days.append(math.log1p(abs((at - fact.created_at).total_seconds()) / SECONDS_PER_DAY))
    return RankingFeatures(
        entry_ids=entry_ids,
        cosines=cosines,
        bm25s=bm25s,
        dense_z=_standardised(cosines, population=candidates, fill=dense_fill) if dense is not None else zeros,
        lexical_z=_standardised(bm25s, population=candidates, fill=lexical_fill) if lexical is not None else zeros,
        log_length=_centred_by_kind(entry_ids, lengths),
        log_days=_centred_by_kind(entry_ids, days),
    )


def rank_scores(features: RankingFeatures, weights: dict[str, RankingWeights]) -> list[float]:
    """The rank score of each candidate, with its kind's weights."""
    scores = []
    for position, entry_id in enumerate(features.entry_ids):
        weight = weights[kind_of(entry_id)]
        scores.append(
            features.dense_z[position]
            + weight.lexical * features.lexical_z[position]
            - weight.length * features.log_length[position]
            - weight.age * features.log_days[position]
        )
    return scores


def fuse(
    dense: Sequence[tuple[str, float]] | None,
    lexical: Sequence[tuple[str, float]] | None,
    *,
    params: FusionParams,
    facts: dict[str, EntryFacts] | None = None,
    at: datetime | None = None,
) -> list[ScoredEntry]:
    """Ranked, max-pooled entries best first; None for a retriever that did not answer.

    facts (length and date of each candidate) and at (the query's time) feed the priors; an entry
    without facts gets none, and without facts at all the ranking is the z-scores alone.
    """
    if dense is None and lexical is None:
        raise RetrievalUnavailable("neither the vector store nor the lexical index answered")
    alpha = params.lexical_weight
    if dense is None:
        dense_weight, lexical_weight = 0.0, 1.0
    elif lexical is None:
        dense_weight, lexical_weight = 1.0, 0.0
    else:
        dense_weight, lexical_weight = 1.0 / (1.0 + alpha), alpha / (1.0 + alpha)
    features = ranking_features(dense, lexical, candidates=params.candidates, facts=facts, at=at)
    ranks = rank_scores(features, params.weights)
    listed_dense = dict(dense or ())
    listed_lexical = dict(lexical or ())
    lexical_scale = max(max(listed_lexical.values(), default=0.0), params.lexical_floor)

    best: dict[str, ScoredEntry] = {}
    for position, entry_id in enumerate(features.entry_ids):
        cosine = listed_dense.get(entry_id)
        bm25 = listed_lexical.get(entry_id)
        lexical_part = min(1.0, features.bm25s[position] / lexical_scale)
        candidate = ScoredEntry(
            entry_id=entry_id,
            score=round(dense_weight * features.cosines[position] + lexical_weight * lexical_part, 6),
            dense_score=None if cosine is None else round(max(0.0, min(1.0, cosine)), 6),
            lexical_score=None if bm25 is None else round(min(1.0, bm25 / lexical_scale), 6),
            rank_score=round(ranks[position], 6),
        )
        key = group_key(entry_id)
        held = best.get(key)
        if held is None or (candidate.rank_score, held.entry_id) > (held.rank_score, candidate.entry_id):
            best[key] = candidate
    return sorted(best.values(), key=lambda entry: (-entry.rank_score, entry.entry_id))


@dataclass(frozen=True)
class Candidates:
    """What the retrievers found for one query, before ranking (None: that retriever did not answer)."""

    dense: list[tuple[str, float]] | None
    lexical: list[tuple[str, float]] | None
    facts: dict[str, EntryFacts]


class Retriever:
    """Dense + lexical search over the knowledge base, filtered by area and entry kind."""

    def __init__(
        self,
        encoder: Encoder,
        store: VectorStore,
        lexical_index: LexicalIndex,
        catalog: EntryCatalog,
        *,
        params: FusionParams | None = None,
    ):
        self.store = store
        self.lexical_index = lexical_index
        self.catalog = catalog
        # The parameters as configured; `params` are those for the encoder in use (use_encoder).
        self.configured_params = params or FusionParams()
        self.use_encoder(encoder)
        # Why dense retrieval is off in this process (the index was built by another encoder), or None.
        self.dense_paused: str | None = None

    def use_encoder(self, encoder: Encoder) -> None:
        """Embed queries with `encoder` and rank with the weights for an encoder like it (one that
        learned confirmed matches gives dense retrieval a larger share; FusionParams.for_encoder)."""
        self.encoder = encoder
        self.params = self.configured_params.for_encoder(encoder.learned_matches)

    async def _dense(self, text: str, area: str | None, kinds: Sequence[str]) -> list[tuple[str, float]] | None:
        if self.dense_paused:
            return None
        max_tokens = self.params.query_max_tokens(kinds)
        vector = (await self.encoder.encode_async([text], max_tokens=max_tokens))[0]
        where: dict[str, list[Scalar]] = {"kind": list(kinds)}
        if area is not None:
            where["area"] = [area, ""]  # "" marks documents that apply to every area
        try:
            return await asyncio.to_thread(self.store.query, vector, self.params.candidates, where)
        except VectorStoreUnavailable as exc:
            log.warning("vector store unavailable, lexical retrieval only: %s", exc)
            return None

    async def _lexical(self, text: str, area: str | None, kinds: Sequence[str]) -> list[tuple[str, float]] | None:
        terms = tokenize(text)
        if not terms:
            return []
        try:
            return await self.lexical_index.search(terms, k=self.params.candidates, area=area, kinds=kinds)
        except Exception:  # noqa: BLE001 - a lexical outage degrades to dense retrieval, never fails it
            log.warning("lexical index unavailable, dense retrieval only", exc_info=True)
            return None

    async def _facts(self, entry_ids: list[str]) -> dict[str, EntryFacts]:
        if not entry_ids:
            return {}
        try:
            return await self.catalog.facts(entry_ids)
        except Exception:  # noqa: BLE001 - without facts the ranking drops its priors, it does not fail
            log.warning("entry facts unavailable, ranking without priors", exc_info=True)
            return {}

    async def candidates(self, text: str, *, area: str | None, kinds: Sequence[str]) -> Candidates:
        """Both retrievers' candidates (run concurrently), then their lengths and dates in one query."""
        dense, lexical = await asyncio.gather(self._dense(text, area, kinds), self._lexical(text, area, kinds))
        found = sorted({entry_id for entry_id, _ in dense or ()} | {entry_id for entry_id, _ in lexical or ()})
        return Candidates(dense=dense, lexical=lexical, facts=await self._facts(found))

    async def search(
        self,
        text: str,
        *,
        area: str | None,
        k: int,
        kinds: Sequence[str] = ("incident", "document"),
        min_score: float = 0.0,
        at: datetime | None = None,
    ) -> list[ScoredEntry]:
        """The k best entries for a text, none under min_score; at is the query's time (age prior)."""
        if not text.strip() or k <= 0:
            return []
        found = await self.candidates(text, area=area, kinds=kinds)
        ranked = fuse(found.dense, found.lexical, params=self.params, facts=found.facts, at=at)
        return [entry for entry in ranked if entry.score >= min_score][:k]
