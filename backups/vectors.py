"""The vector index in a backup: every vector with its id and metadata, saved as one .npz file.

Postgres stays the source of truth: entries whose vector is missing from the file are marked unsynced at restore
and the vector sync embeds them again, so a backup taken while the vector store was down still restores whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from agent.store import Scalar


class ExportableStore(Protocol):
    """A vector store that can list every vector (ChromaVectorStore)."""

    def export_all(self) -> tuple[list[str], np.ndarray, list[dict[str, Scalar]]]:
        """Ids, embeddings and metadatas of every stored vector."""

    def upsert(self, ids: list[str], embeddings: np.ndarray, metadatas: list[dict[str, Scalar]]) -> None:
        """Insert or replace vectors by id."""

    def count(self) -> int:
        """How many vectors are stored."""

    def reset(self) -> None:
        """Remove every vector."""


def save_vectors(store: ExportableStore, target: Path) -> int:
    """Write the store's vectors to `target` (.npz); returns how many."""
    ids, embeddings, metadatas = store.export_all()
    with target.open("wb") as writer:
        np.savez(
            writer,
            ids=np.array(ids, dtype=np.str_),
            embeddings=embeddings,
            metadatas=np.array([json.dumps(m, sort_keys=True) for m in metadatas], dtype=np.str_),
        )
    return len(ids)


def load_vectors(source: Path) -> tuple[list[str], np.ndarray, list[dict[str, Scalar]]]:
    """Read a file written by `save_vectors` (no pickled objects are ever loaded)."""
    with np.load(source, allow_pickle=False) as data:
        ids = [str(v) for v in data["ids"]]
        embeddings = np.asarray(data["embeddings"], dtype=np.float32)
        metadatas = [json.loads(str(m)) for m in data["metadatas"]]
    if not (len(ids) == len(embeddings) == len(metadatas)):
        raise ValueError("vector file is inconsistent: ids, embeddings and metadatas differ in length")
    return ids, embeddings, metadatas


def restore_vectors(store: ExportableStore, source: Path, *, keep: set[str], batch: int = 1000) -> list[str]:
    """Upsert the saved vectors whose id is in `keep` (entries present in the restored database); their ids."""
    ids, embeddings, metadatas = load_vectors(source)
    chosen = [i for i, vector_id in enumerate(ids) if vector_id in keep]
    for start in range(0, len(chosen), batch):
        part = chosen[start : start + batch]
        store.upsert([ids[i] for i in part], embeddings[part], [metadatas[i] for i in part])
    return [ids[i] for i in chosen]
