"""The grouping behind the dashboard's top recurring problems (backend/sla/dashboard.py)."""

from __future__ import annotations

import numpy as np

from backend.sla.dashboard import group_by_meaning


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_rows_close_to_a_group_centroid_join_it_and_others_start_their_own():
    vectors = np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0.95, 0.05, 0), unit(0.9, 0, 0.1), unit(0, 0, 1)])
    assert group_by_meaning(vectors, 0.8) == [[0, 2, 3], [1], [4]]


def test_a_higher_threshold_keeps_near_duplicates_apart():
    vectors = np.stack([unit(1, 0, 0), unit(0.8, 0.6, 0)])  # cosine 0.8
    assert group_by_meaning(vectors, 0.79) == [[0, 1]]
    assert group_by_meaning(vectors, 0.81) == [[0], [1]]


def test_a_row_joins_the_most_similar_group_not_the_first_that_qualifies():
    vectors = np.stack([unit(1, 0), unit(0, 1), unit(0.6, 0.8)])  # cosine 0.6 to the first, 0.8 to the second
    assert group_by_meaning(vectors, 0.5) == [[0], [1, 2]]


def test_no_rows_make_no_groups():
    assert group_by_meaning(np.zeros((0, 3), dtype=np.float32), 0.75) == []
