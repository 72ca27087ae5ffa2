"""Hybrid retrieval: dense (embeddings in the vector store) + lexical (BM25), fused into one score.

The fused score of an entry is

    score = (max(cosine, 0) + lexical_weight * lexical) / (1 + lexical_weight)

where `lexical` is the entry's BM25 score divided by the larger of (a) the best BM25 score among
the candidates and (b) `lexical_floor` times the most the query could score. (b) keeps a weak
lexical match from earning the full lexical share just because it is the best of a bad lot, so
the fused score stays comparable across queries and a minimum-score cut means something.
Candidates are the top `candidates` of each retriever; an entry seen by one retriever only gets
the other's weakest listed score when that list was full (its true score is at most that), else 0.
Document chunks are max-pooled: a document is as good as its best chunk.
Measured choices and figures: docs/knowledge.md.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol, Sequence

from agent.embeddings import Encoder
from agent.lexical import tokenize
from agent.store import Scalar, VectorStore, VectorStoreUnavailable
from agent.types import ScoredEntry

log = logging.getLogger(__name__)


class LexicalIndex(Protocol):
    """Where BM25 runs (the backend's Postgres postings)."""

    async def search(
        self, terms: list[str], *, k: int, area: str | None, kinds: Sequence[str]
    ) -> list[tuple[str, float]]:
        """(entry_id, score in [0, 1]) best first: BM25 divided by the most this query could score."""


class RetrievalUnavailable(Exception):
    """Neither the vector store nor the lexical index answered."""


@dataclass(frozen=True)
class FusionParams:
    """Tunables of retrieval and fusion; the defaults are the measured best (docs/knowledge.md)."""

    candidates: int = 100
    lexical_weight: float = 0.5
    lexical_floor: float = 0.2
    # The query is embedded from its first 128 word pieces (entries from up to 256): as good or
    # better on both evaluation tasks, and half the encoding time of a long incident description.
    query_max_tokens: int = 128


def group_key(entry_id: str) -> str:
    """Entries that count as one result: the chunks of a document ('doc:45:2' -> 'doc:45')."""
    if entry_id.startswith("doc:"):
        return entry_id.rsplit(":", 1)[0]
    return entry_id


def fuse(
    dense: Sequence[tuple[str, float]] | None,
    lexical: Sequence[tuple[str, float]] | None,
    *,
    params: FusionParams,
) -> list[ScoredEntry]:
    """Fused, max-pooled entries best first; None for a retriever that did not answer."""
    if dense is None and lexical is None:
        raise RetrievalUnavailable("neither the vector store nor the lexical index answered")
    alpha = params.lexical_weight
    if dense is None:
        dense_weight, lexical_weight = 0.0, 1.0
    elif lexical is None:
        dense_weight, lexical_weight = 1.0, 0.0
    else:
        dense_weight, lexical_weight = 1.0 / (1.0 + alpha), alpha / (1.0 + alpha)
    dense_scores = {entry_id: max(0.0, min(1.0, score)) for entry_id, score in dense or ()}
    lexical_scores = dict(lexical or ())
    # An entry missing from a full list scored at most that list's last score.
    dense_fill = min(dense_scores.values()) if len(dense_scores) >= params.candidates else 0.0
    lexical_fill = min(lexical_scores.values()) if len(lexical_scores) >= params.candidates else 0.0
    lexical_scale = max(max(lexical_scores.values(), default=0.0), params.lexical_floor)

    best: dict[str, ScoredEntry] = {}
    for entry_id in dense_scores.keys() | lexical_scores.keys():
        cosine = dense_scores.get(entry_id)
        bm25 = lexical_scores.get(entry_id)
        lexical_part = min(1.0, (bm25 if bm25 is not None else lexical_fill) / lexical_scale)
        dense_part = cosine if cosine is not None else dense_fill
        candidate = ScoredEntry(
            entry_id=entry_id,
            score=round(dense_weight * dense_part + lexical_weight * lexical_part, 6),
            dense_score=None if cosine is None else round(cosine, 6),
            lexical_score=None if bm25 is None else round(min(1.0, bm25 / lexical_scale), 6),
        )
        key = group_key(entry_id)
        held = best.get(key)
        if held is None or (candidate.score, held.entry_id) > (held.score, candidate.entry_id):
            best[key] = candidate
    return sorted(best.values(), key=lambda entry: (-entry.score, entry.entry_id))


class Retriever:
    """Dense + lexical search over the knowledge base, filtered by area and entry kind."""

    def __init__(
        self,
        encoder: Encoder,
        store: VectorStore,
        lexical_index: LexicalIndex,
        *,
        params: FusionParams = FusionParams(),
    ):
        self.encoder = encoder
        self.store = store
        self.lexical_index = lexical_index
        self.params = params

    async def _dense(self, text: str, area: str | None, kinds: Sequence[str]) -> list[tuple[str, float]] | None:
        vector = (await self.encoder.encode_async([text], max_tokens=self.params.query_max_tokens))[0]
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

    async def search(
        self,
        text: str,
        *,
        area: str | None,
        k: int,
        kinds: Sequence[str] = ("incident", "document"),
        min_score: float = 0.0,
    ) -> list[ScoredEntry]:
        """The k best entries for a text, scores in [0, 1], none under min_score."""
        if not text.strip() or k <= 0:
            return []
        dense, lexical = await asyncio.gather(self._dense(text, area, kinds), self._lexical(text, area, kinds))
        ranked = fuse(dense, lexical, params=self.params)
        return [entry for entry in ranked if entry.score >= min_score][:k]
