"""Encoder adaptation (agent/adapt.py): the cropped pairs, the saved folder, and that it learns."""

from __future__ import annotations

import random

import numpy as np
import pytest

from agent.adapt import (
    ADAPTATION_MANIFEST,
    AdaptationParams,
    TrainingPair,
    adapt_encoder,
    base_model_of,
    cropped_pair,
    data_fingerprint,
    encoder_identity,
    learned_matches,
    pair_batches,
    read_manifest,
)
from agent.embeddings import Encoder, bundled_model_path

MACHINES = ["press", "lathe", "conveyor", "palletiser", "labeller", "mixer", "oven", "filler"]
FAULTS = ["overcurrent", "encoder drift", "low pressure", "jam", "overheating", "vibration", "leak", "timeout"]
PARTS = ["bearing", "fuse", "sensor", "valve", "belt", "relay", "gasket", "drive board"]
# Small and fast: a few steps of batches of 16 short texts, enough to move a 22M-parameter model.
QUICK = AdaptationParams(epochs=4, max_steps=12, batch_size=16, learning_rate=1e-4, warmup_steps=2, max_tokens=64)


def corpus(size: int = 48) -> list[str]:
    """Entries in a plant's dialect: each names its own codes in every sentence."""
    rng = random.Random(11)
    texts = []
    for number in range(size):
        code = f"QX{rng.randint(100, 999)}-{rng.choice('ABCDEFGH')}{rng.randint(10, 99)}"
        machine, fault, part = rng.choice(MACHINES), rng.choice(FAULTS), rng.choice(PARTS)
        texts.append(
            f"Cell {number} {machine} {code} stopped with {fault} alarm. "
            f"The {machine} {code} panel showed {fault} twice per shift. "
            f"Replaced the {part} of {code} and cleared the {fault} counter."
        )
    return texts


def pseudo_query_mrr(encoder: Encoder, texts: list[str]) -> float:
    """Mean reciprocal rank of a span of each entry for another span of it, among one span of every entry."""
    rng = random.Random(99)
    pairs = [cropped_pair(text, rng) for text in texts]
    queries = encoder.encode([pair[0] for pair in pairs if pair])
    contexts = encoder.encode([pair[1] for pair in pairs if pair])
    similarity = queries @ contexts.T
    ranks = (similarity > np.diag(similarity)[:, None]).sum(axis=1)
    return float(np.mean(1.0 / (ranks + 1)))


def test_a_pair_is_two_spans_of_the_entry_of_a_tenth_to_a_half_of_its_words():
    text = " ".join(f"word{n}" for n in range(100))
    rng = random.Random(3)
    for _ in range(50):
        first, second = cropped_pair(text, rng)
        for span in (first, second):
            assert span in text and 5 <= len(span.split()) <= 50


def test_an_entry_under_ten_words_gives_no_pair():
    assert cropped_pair("fan noisy on line three after the restart", random.Random(1)) is None
    assert cropped_pair("fan noisy on line three after the weekend restart today", random.Random(1)) is not None


def test_identity_names_the_adaptation_or_else_the_model_folder(tmp_path):
    plain = tmp_path / "all-MiniLM-L6-v2"
    plain.mkdir()
    assert encoder_identity(plain) == "model:all-MiniLM-L6-v2"
    assert base_model_of(plain) == str(plain)
    (plain / ADAPTATION_MANIFEST).write_text('{"adaptation_id": "abc", "base_model": "/models/base"}')
    assert encoder_identity(plain) == "adapted:abc"
    assert base_model_of(plain) == "/models/base"


def test_too_small_a_knowledge_base_is_refused_before_any_training(tmp_path):
    with pytest.raises(ValueError, match="at least 32 entries of 10 words"):
        adapt_encoder(bundled_model_path(), corpus(20), tmp_path / "adapted", QUICK)
    assert not (tmp_path / "adapted").exists()


def test_adaptation_learns_the_knowledge_base_and_saves_a_loadable_model(tmp_path, encoder):
    texts = corpus()
    before = pseudo_query_mrr(encoder, texts)
    destination = tmp_path / "adapted"
    destination.mkdir()
    (destination / "stale.txt").write_text("the previous model")
    report = adapt_encoder(bundled_model_path(), texts, destination, QUICK)

    adapted = Encoder(str(destination))
    after = pseudo_query_mrr(adapted, texts)
    assert after > before + 0.05, (before, after)
    assert report.steps == QUICK.max_steps and report.texts == len(texts)
    manifest = read_manifest(destination)
    assert manifest is not None and manifest["base_model"] == bundled_model_path()
    assert manifest["params"]["learning_rate"] == QUICK.learning_rate
    assert adapted.identity == f"adapted:{manifest['adaptation_id']}" != encoder.identity
    # Replaced whole, never merged with what was there, and nothing left beside it.
    assert not (destination / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapted"]


# What a plant's operators call its machines: names no encoder could know, used in reports only.
NICKNAMES = {
    "press": "Bertha",
    "lathe": "Oskar",
    "conveyor": "Viktor",
    "palletiser": "Greta",
    "labeller": "Hugo",
    "mixer": "Ingrid",
    "oven": "Lotte",
    "filler": "Emil",
}


def machine_notes() -> tuple[list[str], list[str]]:
    """One entry per (machine, fault), written with the machine's name, and a report of each written
    with its nickname: only confirmed matches can teach which machine a nickname is."""
    entries, reports = [], []
    for machine in MACHINES:
        for fault in FAULTS:
            entries.append(
                f"The {machine} stopped with a {fault} alarm during the night shift. Maintenance checked the "
                f"{machine} and cleared the {fault} fault before restarting the {machine}."
            )
            reports.append(f"{NICKNAMES[machine]} is down again, {fault} reported")
    return entries, reports


def mrr_of(encoder: Encoder, queries: list[str], passages: list[str], wanted: list[int]) -> float:
    """Mean reciprocal rank of each query's wanted passage among all passages."""
    similarity = encoder.encode(queries) @ encoder.encode(passages).T
    own = similarity[np.arange(len(queries)), wanted]
    ranks = (similarity > own[:, None]).sum(axis=1)
    return float(np.mean(1.0 / (ranks + 1)))


def test_pair_batches_cover_every_pair_once_and_never_leave_one_alone():
    for count in (2, 17, 32, 33, 65):
        batches = pair_batches(count, 16, random.Random(4))
        assert sorted(index for batch in batches for index in batch) == list(range(count))
        assert all(2 <= len(batch) <= 17 for batch in batches)
    assert pair_batches(1, 16, random.Random(4)) == []


def test_confirmed_matches_teach_what_the_knowledge_base_cannot_and_it_carries_to_unseen_reports(tmp_path, encoder):
    entries, reports = machine_notes()
    # Half of the reports are confirmed matches; the other half are judged (each machine is in both).
    learned = [index for index in range(len(entries)) if index % 2 == 0]
    unseen = [index for index in range(len(entries)) if index % 2 == 1]
    pairs = [TrainingPair(query=reports[index], passage=entries[index]) for index in learned]
    before = mrr_of(encoder, [reports[index] for index in unseen], entries, unseen)

    params = AdaptationParams(
        epochs=1, max_steps=2, batch_size=16, learning_rate=3e-5, warmup_steps=1, max_tokens=64,
        pair_epochs=8, pair_learning_rate=2e-4, pair_warmup_steps=1, pair_max_tokens=64,
    )  # fmt: skip
    report = adapt_encoder(bundled_model_path(), entries, tmp_path / "adapted", params, pairs=pairs)

    after = mrr_of(Encoder(str(tmp_path / "adapted")), [reports[index] for index in unseen], entries, unseen)
    assert after > before + 0.1, (before, after)
    assert report.pairs == 32 and report.pair_steps == 16 and report.steps == 2 + 16
    manifest = read_manifest(tmp_path / "adapted")
    assert manifest is not None and manifest["pairs"] == 32
    assert manifest["data_sha256"] != data_fingerprint(entries)  # the pairs are part of what it learned from
    assert Encoder(str(tmp_path / "adapted")).learned_matches == 32  # the retriever ranks by it


def test_only_an_encoder_trained_on_pairs_counts_as_having_learned_confirmed_matches(tmp_path, encoder):
    assert encoder.learned_matches == 0  # the bundled model
    folder = tmp_path / "adapted"
    folder.mkdir()
    assert learned_matches(folder) == 0  # not adapted here
    (folder / ADAPTATION_MANIFEST).write_text('{"adaptation_id": "a", "pairs": 0, "pair_steps": 0}')
    assert learned_matches(folder) == 0  # cropping alone
    (folder / ADAPTATION_MANIFEST).write_text('{"adaptation_id": "a", "pairs": 1, "pair_steps": 0}')
    assert learned_matches(folder) == 0  # one pair: nothing to contrast it with, never trained
    (folder / ADAPTATION_MANIFEST).write_text('{"adaptation_id": "a", "pairs": 120, "pair_steps": 12}')
    assert learned_matches(folder) == Encoder(str(folder)).learned_matches == 120


def test_two_reports_solved_by_one_entry_are_not_each_others_negatives():
    from sentence_transformers import SentenceTransformer

    from agent.adapt import _contrastive_loss

    model = SentenceTransformer(bundled_model_path(), device="cpu", local_files_only=True)
    same_entry = _contrastive_loss(
        model, ["press stopped", "lathe noisy"], ["Replace the fuse.", "Replace the fuse."], 20.0
    )
    # With the shared entry masked, each report has only its own entry to choose: nothing to learn.
    assert same_entry.item() == pytest.approx(0.0, abs=1e-6)
    different = _contrastive_loss(
        model, ["press stopped", "lathe noisy"], ["Replace the fuse.", "Oil the spindle."], 20.0
    )
    assert different.item() > 0.01
