"""Unsupervised adaptation of the sentence encoder to one knowledge base (contrastive cropping).

The bundled encoder was trained on general web text; a knowledge base speaks its own dialect
(part numbers, product names, the way a team writes its fixes). Adapting needs no labelled
queries: two random spans of the same entry are a positive pair, the other entries of the batch
the negatives (independent cropping, Izacard et al. 2022, "Unsupervised Dense Information
Retrieval with Contrastive Learning"). A few dozen steps of that loss on the entries themselves
move the encoder towards the knowledge base's vocabulary while keeping what it knew (small
learning rate, linear decay, one pass). On DellQA it did better than the inverse cloze task (a
sentence against the rest of its entry): dense recall@10 0.583 against 0.568 / 0.575, base 0.539.

Confirmed matches, when a deployment has them (a report and the entry that solved it: accepted
suggestions, or pairs an operator imports), are learned after the cropping with the same loss,
the report against its entry and the other entries of the batch as negatives. On DellQA, pairs
from half of the questions lifted dense recall@10 of the other half from 0.550 to 0.625 (three
passes), and the whole product's recall@10 from 0.613 to 0.649 (five passes, with the ranking
weights for a learned encoder; docs/performance.md); they teach how people ask, which the knowledge
base alone cannot.

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
    # Confirmed matches (TrainingPair), learned after the cropping: few, so several passes, under one
    # warm-up and one linear decay of their own over all of them; reports read up to pair_max_tokens.
    pair_epochs: int = 5
    pair_learning_rate: float = 3e-5
    pair_warmup_steps: int = 5
    pair_max_tokens: int = 256
    # Bounds the time like max_steps: 1,000 pairs are about 155 steps (about 45 min on 2 cores).
    max_pairs: int = 1000


@dataclass(frozen=True)
class TrainingPair:
    """A confirmed match: a report (as people wrote it) and the text of the entry that solved it."""

    query: str
    passage: str


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
    pairs: int = 0
    pair_steps: int = 0


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


def data_fingerprint(texts: Sequence[str], pairs: Sequence[TrainingPair] = ()) -> str:
    """sha256 over the training texts, then the pairs, in order (the texts alone when there are no pairs)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    for pair in pairs:
        for part in (pair.query, pair.passage):
            digest.update(b"\1")
            digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def pair_batches(count: int, batch_size: int, rng: random.Random) -> list[list[int]]:
    """One pass over `count` pairs in a random order, in batches of batch_size; a last batch of one
    pair (nothing to contrast it with) joins the batch before it."""
    order = list(range(count))
    rng.shuffle(order)
    batches = [order[start : start + batch_size] for start in range(0, count, batch_size)]
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches[-2].extend(batches.pop())
    return [batch for batch in batches if len(batch) >= 2]


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


def learned_matches(model_dir: str | Path) -> int:
    """How many confirmed matches (report, entry) the encoder in model_dir was trained on; 0 for the
    bundled model, a folder adapted by cropping alone, or a model not adapted here."""
    manifest = read_manifest(model_dir)
    if not manifest or not manifest.get("pair_steps"):
        return 0
    return int(manifest.get("pairs", 0))


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
    pairs: Sequence[TrainingPair] = (),
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[int, int, float], None] | None = None,
) -> AdaptationReport:
    """Fine-tune `base_model` on `texts` (pairs of spans of one entry, cropped_pair), then on the
    confirmed matches in `pairs` if any, and save it in `model_dir`.

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
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate)
    batches_per_epoch = len(usable) // params.batch_size
    crop_steps = min(params.max_steps, params.epochs * batches_per_epoch)
    # Its own random order, so the cropping is the same with or without pairs.
    pair_rng = random.Random(params.seed + 1)
    pair_schedule = [
        batch
        for _ in range(params.pair_epochs if len(pairs) >= 2 else 0)
        for batch in pair_batches(len(pairs), params.batch_size, pair_rng)
    ]
    total_steps = crop_steps + len(pair_schedule)
    losses: list[float] = []

    def train_step(loss: Tensor, rate: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] = rate
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(float(loss.item()))
        if progress:
            progress(len(losses), total_steps, losses[-1])

    model.max_seq_length = params.max_tokens
    model.train()
    step = 0
    while step < crop_steps:
        order = list(range(len(usable)))
        rng.shuffle(order)
        for start in range(0, batches_per_epoch * params.batch_size, params.batch_size):
            if step >= crop_steps:
                break
            cropped = [cropped_pair(usable[i], rng) for i in order[start : start + params.batch_size]]
            firsts = [pair[0] for pair in cropped if pair]
            seconds = [pair[1] for pair in cropped if pair]
            loss = _contrastive_loss(model, firsts, seconds, params.scale)
            train_step(
                loss, params.learning_rate * min(1.0, (step + 1) / params.warmup_steps) * (1 - step / crop_steps)
            )
            step += 1

    model.max_seq_length = params.pair_max_tokens
    for position, batch in enumerate(pair_schedule):
        queries = [pairs[i].query for i in batch]
        passages = [pairs[i].passage for i in batch]
        loss = _contrastive_loss(model, queries, passages, params.scale)
        warmup = min(1.0, (position + 1) / params.pair_warmup_steps)
        train_step(loss, params.pair_learning_rate * warmup * (1 - position / len(pair_schedule)))
    model.eval()
    report = AdaptationReport(
        model_dir=str(model_dir),
        base_model=str(base_model),
        texts=len(usable),
        steps=len(losses),
        seconds=round(clock() - started, 1),
        first_loss=round(losses[0], 4) if losses else 0.0,
        last_loss=round(losses[-1], 4) if losses else 0.0,
        data_sha256=data_fingerprint(usable, pairs),
        pairs=len(pairs),
        pair_steps=len(pair_schedule),
    )
    manifest = asdict(report) | {"params": asdict(params), "adaptation_id": uuid.uuid4().hex}
    _save_atomically(model, Path(model_dir), manifest)
    return report


def _contrastive_loss(model: SentenceTransformer, queries: list[str], contexts: list[str], scale: float) -> Tensor:
    """Symmetric in-batch softmax: each query against every context of the batch, and back.

    A context equal to the right one (two reports solved by one entry), or a query equal to the
    right one (one report that several entries solved), is not counted as a negative.
    """
    import torch
    import torch.nn.functional as F

    # sentence-transformers 6 renamed tokenize to preprocess.
    prepare = getattr(model, "preprocess", None) or model.tokenize
    query_vectors = F.normalize(model(prepare(queries))["sentence_embedding"], dim=-1)
    context_vectors = F.normalize(model(prepare(contexts))["sentence_embedding"], dim=-1)
    logits = query_vectors @ context_vectors.T * scale
    same = torch.tensor(
        [
            [i != j and (contexts[i] == contexts[j] or queries[i] == queries[j]) for j in range(len(contexts))]
            for i in range(len(queries))
        ]
    )
    logits = logits.masked_fill(same, float("-inf"))
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
