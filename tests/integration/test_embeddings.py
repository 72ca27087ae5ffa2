"""The bundled sentence encoder, loaded for real."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np


def test_vectors_are_normalised_float32_rows_of_the_model_dimension(encoder):
    vectors = encoder.encode(["conveyor motor overheating", "printer labels shifted"])
    assert vectors.shape == (2, encoder.dimension) == (2, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_no_texts_give_an_empty_matrix(encoder):
    assert encoder.encode([]).shape == (0, 384)


def test_paraphrases_are_closer_than_unrelated_texts(encoder):
    motor, paraphrase, unrelated = encoder.encode(
        ["conveyor motor overheating", "the belt drive motor gets too hot", "VPN certificate expired"]
    )
    assert motor @ paraphrase > motor @ unrelated + 0.2


async def test_async_encoding_gives_the_same_vectors(encoder):
    texts = ["alarm E-4021 on line 3"]
    assert np.allclose(await encoder.encode_async(texts), encoder.encode(texts), atol=1e-6)


def test_max_tokens_truncates_long_texts_only_and_leaves_the_model_as_it_was(encoder):
    long_text = "pump " * 10 + "the bearing of the hydraulic unit seized " * 40
    short_text = "pump bearing seized"
    assert np.allclose(encoder.encode([short_text], max_tokens=16), encoder.encode([short_text]), atol=1e-6)
    assert not np.allclose(encoder.encode([long_text], max_tokens=16), encoder.encode([long_text]), atol=1e-3)
    assert encoder._loaded_model().max_seq_length == 256


def test_concurrent_encoding_from_threads_is_consistent(encoder):
    texts = [f"incident number {n} with a broken sensor" for n in range(8)]
    expected = encoder.encode(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda text: encoder.encode([text], max_tokens=8 if len(text) % 2 else None)[0], texts))
    for text, got, want in zip(texts, results, expected):
        if len(text) % 2 == 0:
            assert np.allclose(got, want, atol=1e-5)
