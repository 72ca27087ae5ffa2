"""Vector store port and its ChromaDB adapter (embedded folder or server), cosine space."""

from __future__ import annotations

import threading
from collections import defaultdict
from os import PathLike
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, TypeVar, cast
from urllib.parse import urlsplit

import numpy as np

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.collection_configuration import CreateHNSWConfiguration
    from chromadb.api.models.Collection import Collection

T = TypeVar("T")
Scalar = str | int | float | bool
Metadata = Mapping[str, Scalar]
# A filter: each key must equal the value, or be one of the values when a list is given.
Where = Mapping[str, Scalar | list[Scalar]]

# HNSW parameters: wider than Chroma's defaults for near-exact recall at knowledge-base sizes.
HNSW_CONFIGURATION: CreateHNSWConfiguration = {
    "space": "cosine",
    "ef_construction": 200,
    "ef_search": 200,
    "max_neighbors": 32,
}
UPSERT_BATCH = 1000


class VectorStoreUnavailable(Exception):
    """The vector store could not be reached or failed; callers fall back to lexical search."""


class EncoderMismatch(VectorStoreUnavailable):
    """The store's vectors were made by another encoder: this process must neither query nor write them."""


def incident_vector_id(incident_id: int) -> str:
    """Stable vector id of a resolved incident's entry."""
    return f"inc:{incident_id}"


def document_chunk_vector_id(document_id: int, chunk_index: int) -> str:
    """Stable vector id of one chunk of a knowledge document."""
    return f"doc:{document_id}:{chunk_index}"


class VectorStore(Protocol):
    """Where entry vectors live; every method may raise VectorStoreUnavailable.

    Every vector's metadata has a "kind" and an "area" ("" for every area); a query's where
    names the kinds and, optionally, the areas to search.
    """

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, metadatas: Sequence[Metadata]) -> None:
        """Insert or replace vectors by id."""

    def delete(self, ids: Sequence[str]) -> None:
        """Remove vectors by id; unknown ids are ignored."""

    def query(self, embedding: np.ndarray, k: int, where: Where | None = None) -> list[tuple[str, float]]:
        """The k nearest ids with their cosine similarity, best first, among those matching where."""

    def count(self) -> int:
        """How many vectors are stored."""

    def reset(self) -> None:
        """Remove every vector."""


def _as_list(value: Scalar | list[Scalar] | None) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _chroma_where(where: Where) -> dict[str, Any] | None:
    """Chroma's filter syntax for the keys that are not partitions."""
    clauses = [{key: {"$in": list(v)} if isinstance(v, list) else {"$eq": v}} for key, v in where.items()]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaVectorStore:
    """VectorStore on ChromaDB, one collection per (kind, area) partition.

    Chroma filters by metadata by first listing every matching id, which costs tens of
    milliseconds at 20,000 vectors, while an unfiltered HNSW query takes about two. So the
    filters this product always uses, kind and area, pick collections instead
    ("<name>-incident-<hex of area>", "<name>-document-global"), and a query merges the nearest
    of each partition searched.
    """

    def __init__(self, client_factory: Callable[[], ClientAPI], collection: str) -> None:
        self._client_factory = client_factory
        self._name = collection
        self._client: ClientAPI | None = None
        self._collections: dict[str, Collection] = {}
        self._lock = threading.Lock()

    @classmethod
    def persistent(
        cls, path: str | PathLike[str], collection: str, *, before_open: Callable[[], object] | None = None
    ) -> "ChromaVectorStore":
        """A store in a local folder (the embedded default); `before_open()` runs first (e.g. takes a lock)."""

        def factory() -> ClientAPI:
            import chromadb

            if before_open is not None:
                before_open()
            from chromadb.config import Settings as ChromaSettings

            return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))

        return cls(factory, collection)

    @classmethod
    def http(cls, url: str, collection: str) -> "ChromaVectorStore":
        """A store on a Chroma server, e.g. http://chroma:8000."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not a Chroma server URL: {url!r}")
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 8000)

        def factory() -> ClientAPI:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            return chromadb.HttpClient(
                host=host,
                port=port,
                ssl=parts.scheme == "https",
                settings=ChromaSettings(anonymized_telemetry=False),
            )

        return cls(factory, collection)

    # --- partitions ----------------------------------------------------------------------------

    def partition_name(self, kind: str, area: str) -> str:
        """Collection name of one (kind, area) partition; hex keeps any area code a valid name."""
        return f"{self._name}-{kind}-{area.encode('utf-8').hex() if area else 'global'}"

    def _client_or_connect(self) -> ClientAPI:
        with self._lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def _partition(self, name: str, *, create: bool) -> Collection | None:
        """A partition's collection, or None when it does not exist and create is False."""
        with self._lock:
            cached = self._collections.get(name)
        if cached is not None:
            return cached
        client = self._client_or_connect()
        if create:
            collection = client.get_or_create_collection(
                name, configuration={"hnsw": HNSW_CONFIGURATION.copy()}, embedding_function=None
            )
        else:
            # Another replica may have created it since we last looked: ask the store each time.
            if name not in self._partition_names():
                return None
            collection = client.get_collection(name, embedding_function=None)
        with self._lock:
            self._collections[name] = collection
        return collection

    def _partition_names(self, kind: str | None = None) -> list[str]:
        prefix = f"{self._name}-{kind}-" if kind else f"{self._name}-"
        # Chroma 0.6 lists names, other versions collections.
        names = [c if isinstance(c, str) else c.name for c in self._client_or_connect().list_collections()]
        return sorted(name for name in names if name.startswith(prefix))

    def _call(self, operation: Callable[[], T]) -> T:
        try:
            return operation()
        except VectorStoreUnavailable:
            raise
        except Exception as exc:  # chromadb raises many unrelated types for "not reachable"
            # The server may have restarted or a partition been dropped: look them up again.
            with self._lock:
                self._collections.clear()
            raise VectorStoreUnavailable(f"vector store failed: {type(exc).__name__}: {exc}") from exc

    # --- the port ------------------------------------------------------------------------------

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, metadatas: Sequence[Metadata]) -> None:
        """Insert or replace vectors by id (an id that changed partition leaves the old one)."""
        if len(ids) != len(embeddings) or len(ids) != len(metadatas):
            raise ValueError("ids, embeddings and metadatas must have the same length")
        if any("kind" not in m or "area" not in m for m in metadatas):
            raise ValueError("every vector's metadata needs 'kind' and 'area'")
        vectors = np.asarray(embeddings, dtype=np.float32)
        groups: dict[str, list[int]] = defaultdict(list)
        for position, metadata in enumerate(metadatas):
            groups[self.partition_name(str(metadata["kind"]), str(metadata["area"]))].append(position)

        def write() -> None:
            for name, positions in groups.items():
                kind = str(metadatas[positions[0]]["kind"])
                moved = [ids[p] for p in positions]
                for other in self._partition_names(kind):
                    stale = self._partition(other, create=False) if other != name else None
                    # Looking up is cheap; a delete, even of absent ids, is a logged write (2.4 x slower
                    # imports into five areas when every upsert deleted its ids from the other four).
                    present = stale.get(ids=moved, include=[])["ids"] if stale is not None else []
                    if stale is not None and present:
                        stale.delete(ids=present)
                collection = self._partition(name, create=True)
                assert collection is not None  # created when missing
                for start in range(0, len(positions), UPSERT_BATCH):
                    batch = positions[start : start + UPSERT_BATCH]
                    collection.upsert(
                        ids=[ids[p] for p in batch],
                        embeddings=vectors[batch],
                        metadatas=[dict(metadatas[p]) for p in batch],
                    )

        self._call(write)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove vectors by id from every partition; unknown ids are ignored."""

        def remove() -> None:
            for name in self._partition_names():
                collection = self._partition(name, create=False)
                if collection is not None:
                    collection.delete(ids=list(ids))

        if ids:
            self._call(remove)

    def query(self, embedding: np.ndarray, k: int, where: Where | None = None) -> list[tuple[str, float]]:
        """The k nearest ids with cosine similarity (1 - cosine distance), best first."""
        where = dict(where or {})
        kinds = _as_list(where.pop("kind", None))
        areas = _as_list(where.pop("area", None))
        vector = np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        chroma_where = _chroma_where(where)

        def search() -> list[tuple[str, float]]:
            if areas is None:  # every area: every partition of the kinds asked for
                names = [n for n in self._partition_names() if kinds is None or n.split("-")[-2] in kinds]
            else:
                names = [
                    self.partition_name(kind, area) for kind in kinds or ("incident", "document") for area in areas
                ]
            found: list[tuple[str, float]] = []
            for name in names:
                collection = self._partition(name, create=False)
                if collection is None:
                    continue
                result = collection.query(
                    query_embeddings=vector, n_results=k, where=chroma_where, include=["distances"]
                )
                assert result["distances"] is not None  # asked for in include
                distances = zip(result["ids"][0], result["distances"][0])
                found.extend((entry_id, 1.0 - float(distance)) for entry_id, distance in distances)
            return sorted(found, key=lambda item: (-item[1], item[0]))[:k]

        return self._call(search)

    def count(self) -> int:
        """How many vectors are stored, over every partition."""

        def total() -> int:
            partitions = (self._partition(name, create=False) for name in self._partition_names())
            return sum(collection.count() for collection in partitions if collection is not None)

        return self._call(total)

    def export_all(self, batch: int = UPSERT_BATCH) -> tuple[list[str], np.ndarray, list[dict[str, Scalar]]]:
        """Every stored vector with its id and metadata (for backups), partition by partition."""

        def read() -> tuple[list[str], np.ndarray, list[dict[str, Scalar]]]:
            ids: list[str] = []
            vectors: list[np.ndarray] = []
            metadatas: list[dict[str, Scalar]] = []
            for name in self._partition_names():
                collection = self._partition(name, create=False)
                if collection is None:
                    continue
                for offset in range(0, collection.count(), batch):
                    page = collection.get(include=["embeddings", "metadatas"], limit=batch, offset=offset)
                    ids.extend(page["ids"])
                    vectors.append(np.asarray(page["embeddings"], dtype=np.float32))
                    assert page["metadatas"] is not None  # asked for in include
                    # upsert writes only Metadata, whose values are scalars
                    metadatas.extend(cast(dict[str, Scalar], dict(m or {})) for m in page["metadatas"])
            width = vectors[0].shape[1] if vectors else 0
            return ids, (np.concatenate(vectors) if vectors else np.zeros((0, width), dtype=np.float32)), metadatas

        return self._call(read)

    def reset(self) -> None:
        """Drop every partition."""

        def drop() -> None:
            client = self._client_or_connect()
            for name in self._partition_names():
                client.delete_collection(name)
            with self._lock:
                self._collections.clear()

        self._call(drop)
