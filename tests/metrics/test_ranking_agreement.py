"""Ranking and overlap of the per-sample view, on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mistrust.metrics.persample import jaccard, jaccard_matrix, most_vulnerable, strongest_attack


def test_strongest_is_the_highest_auroc_first_listed_on_a_tie() -> None:
    assert strongest_attack({"a": 0.6, "b": 0.7, "c": 0.7}) == "b"
    assert strongest_attack({"a": math.nan, "b": 0.4}) == "b"
    assert strongest_attack({"a": math.nan}) is None
    assert strongest_attack({}) is None


def test_most_vulnerable_ranks_by_margin_ties_by_position_nan_last() -> None:
    score = np.array([0.2, 0.9, 0.5, 0.9, np.nan, 0.7])
    index, margin = most_vulnerable(score, 0.5, k=4)
    # margins 0.4 (rows 1 and 3, tie -> lower row first), 0.2 (row 5), 0.0 (row 2)
    assert index.tolist() == [1, 3, 5, 2]
    np.testing.assert_allclose(margin, [0.4, 0.4, 0.2, 0.0])
    index, margin = most_vulnerable(score, 0.5, k=10)
    assert index.tolist() == [1, 3, 5, 2, 0, 4]
    assert margin[4] == pytest.approx(-0.3) and math.isnan(margin[5])
    assert most_vulnerable(score, 0.5, k=0)[0].tolist() == []


def test_most_vulnerable_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="1-D"):
        most_vulnerable(np.zeros((2, 2)), 0.0, k=1)
    with pytest.raises(ValueError, match="non-negative"):
        most_vulnerable(np.zeros(3), 0.0, k=-1)


def test_jaccard_counts_by_hand() -> None:
    a = np.array([1, 1, 1, 0, 0], bool)  # {0, 1, 2}
    b = np.array([0, 1, 1, 1, 0], bool)  # {1, 2, 3}
    assert jaccard(a, b) == 2 / 4
    assert jaccard(a, ~a) == 0.0
    assert math.isnan(jaccard(np.zeros(5, bool), np.zeros(5, bool)))
    with pytest.raises(ValueError, match="one length"):
        jaccard(a, b[:3])


def test_jaccard_matrix_is_symmetric_with_unit_diagonal() -> None:
    a = np.array([1, 1, 0, 0], bool)
    b = np.array([1, 0, 1, 0], bool)
    none = np.zeros(4, bool)
    m = jaccard_matrix([a, b, none])
    expected = np.array([[1.0, 1 / 3, 0.0], [1 / 3, 1.0, 0.0], [0.0, 0.0, np.nan]])
    np.testing.assert_array_equal(m, expected)
