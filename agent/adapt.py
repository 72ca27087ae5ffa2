"""Unsupervised adaptation of the sentence encoder to one knowledge base (contrastive cropping).

The bundled encoder was trained on general web text; a knowledge base speaks its own dialect
(part numbers, product names, the way a team writes its fixes). Adapting needs no labelled
queries: two random spans of the same entry are a positive pair, the other entries of the batch
the negatives (independent cropping, Izacard et al. 2022, "Unsupervised Dense Information
Retrieval with Contrastive Learning"). A few dozen steps of that loss on the entries themselves
move the encoder towards the knowledge base's vocabulary while keeping what it knew (small
learning rate, linear decay, one pass). On DellQA it did better than the inverse cloze task (a
sentence against the rest of its entry): dense recall@10 0.583 against 0.568 / 0.575, base 0.539.

The result is a normal sentence-transformers folder plus a manifest (ADAPTATION_MANIFEST) that
names the base model, the data and the settings, so an index can tell which encoder built it.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import Tensor

ADAPTATION_MANIFEST = "prs-adaptation.json"
# A span shorter than this says too little to be matched to its entry.
MIN_SPAN_WORDS = 5


@dataclass(frozen=True)
class AdaptationParams:
    """Training settings. Defaults measured on the DellQA knowledge base (docs/knowledge.md)."""

    # Light on purpose: on DellQA one pass at 3e-5 lifted dense recall@10 from 0.539 to 0.583; with
    # the inverse cloze task, one pass gave 0.568-0.575 and three at 5e-5 only 0.545 (it forgets more
    # than it learns).
    epochs: int = 1
    # Caps the training time on a large knowledge base, which is then sampled (about 3.5 s a step on 2 cores).
    max_steps: int = 60
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_steps: int = 10
    max_tokens: int = 128
    # Inverse temperature of the in-batch softmax over cosine similarities.
    scale: float = 20.0
    seed: int = 0


@dataclass(frozen=True)
class AdaptationReport:
    model_dir: str
    base_model: str
    texts: int
    steps: int
    seconds: float
    first_loss: float
    last_loss: float
    data_sha256: str


def cropped_pair(text: str, rng: random.Random) -> tuple[str, str] | None:
    """Two independent random spans of one entry, each 10 to 50 % of its words (at least
    MIN_SPAN_WORDS), or None when the entry has fewer than twice that many words."""
    words = text.split()
    if len(words) < 2 * MIN_SPAN_WORDS:
        return None

    def span() -> str:
        length = max(MIN_SPAN_WORDS, int(len(words) * rng.uniform(0.1, 0.5)))
        start = rng.randint(0, len(words) - length)
        return " ".join(words[start : start + length])

    return span(), span()


def data_fingerprint(texts: Sequence[str]) -> str:
    """sha256 over the training texts, in order."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def read_manifest(model_dir: str | Path) -> dict[str, Any] | None:
    """The adaptation manifest of a model folder, or None for a model that was not adapted here."""
    path = Path(model_dir) / ADAPTATION_MANIFEST
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def base_model_of(model_dir: str | Path) -> str:
    """The model an adaptation starts from: the base of an adapted folder, else the folder itself."""
    manifest = read_manifest(model_dir)
    return str(manifest["base_model"]) if manifest and manifest.get("base_model") else str(model_dir)


def encoder_identity(model_dir: str | Path) -> str:
    """What makes two encoders' vectors comparable: the adaptation's id, else the model folder's name.

    Copying an adapted folder to another machine keeps its identity; adapting again changes it.
    """
    manifest = read_manifest(model_dir)
    if manifest and manifest.get("adaptation_id"):
        return f"adapted:{manifest['adaptation_id']}"
    return f"model:{Path(model_dir).name}"


def adapt_encoder(
    base_model: str,
    texts: Sequence[str],
    model_dir: str | Path,
    params: AdaptationParams = AdaptationParams(),
    *,
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[int, int, float], None] | None = None,
) -> AdaptationReport:
    """Fine-tune `base_model` on `texts` (pairs of spans of one entry, cropped_pair) and save it in `model_dir`.

    The folder is written beside its destination and renamed into place, so a reader sees
    either the previous model or the complete new one. Raises ValueError when fewer than two
    batches of usable entries exist (nothing to contrast).
    """
    import torch
    from sentence_transformers import SentenceTransformer

    usable = [text for text in texts if len(text.split()) >= 2 * MIN_SPAN_WORDS]
    if len(usable) < 2 * params.batch_size:
        raise ValueError(
            f"adaptation needs at least {2 * params.batch_size} entries of {2 * MIN_SPAN_WORDS} words or "
            f"more; the knowledge base has {len(usable)}"
        )
    started = clock()
    rng = random.Random(params.seed)
    torch.manual_seed(params.seed)
    model = SentenceTransformer(base_model, device="cpu", local_files_only=True)
    model.max_seq_length = params.max_tokens
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate)
    batches_per_epoch = len(usable) // params.batch_size
    total_steps = min(params.max_steps, params.epochs * batches_per_epoch)
    step = 0
    first_loss = last_loss = 0.0
    while step < total_steps:
        order = list(range(len(usable)))
        rng.shuffle(order)
        for start in range(0, batches_per_epoch * params.batch_size, params.batch_size):
            if step >= total_steps:
                break
            pairs = [cropped_pair(usable[i], rng) for i in order[start : start + params.batch_size]]
            firsts = [pair[0] for pair in pairs if pair]
            seconds = [pair[1] for pair in pairs if pair]
            loss = _contrastive_loss(model, firsts, seconds, params.scale)
            rate = params.learning_rate * min(1.0, (step + 1) / params.warmup_steps) * (1 - step / total_steps)
            for group in optimizer.param_groups:
                group["lr"] = rate
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            last_loss = float(loss.item())
            if step == 0:
                first_loss = last_loss
            step += 1
            if progress:
                progress(step, total_steps, last_loss)
    model.eval()
    report = AdaptationReport(
        model_dir=str(model_dir),
        base_model=str(base_model),
        texts=len(usable),
        steps=step,
        seconds=round(clock() - started, 1),
        first_loss=round(first_loss, 4),
        last_loss=round(last_loss, 4),
        data_sha256=data_fingerprint(usable),
    )
    manifest = asdict(report) | {"params": asdict(params), "adaptation_id": uuid.uuid4().hex}
    _save_atomically(model, Path(model_dir), manifest)
    return report


def _contrastive_loss(model: SentenceTransformer, queries: list[str], contexts: list[str], scale: float) -> Tensor:
    """Symmetric in-batch softmax: each first span against every second span of the batch, and back."""
    import torch
    import torch.nn.functional as F

    # sentence-transformers 6 renamed tokenize to preprocess.
    prepare = getattr(model, "preprocess", None) or model.tokenize
    query_vectors = F.normalize(model(prepare(queries))["sentence_embedding"], dim=-1)
    context_vectors = F.normalize(model(prepare(contexts))["sentence_embedding"], dim=-1)
    logits = query_vectors @ context_vectors.T * scale
    labels = torch.arange(len(queries))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _save_atomically(model: SentenceTransformer, destination: Path, manifest: dict[str, Any]) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".{destination.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(str(staging))
    (staging / ADAPTATION_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    previous = destination.with_name(f".{destination.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if destination.exists():
        destination.rename(previous)
    staging.rename(destination)
    shutil.rmtree(previous, ignore_errors=True)
