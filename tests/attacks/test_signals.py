from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import logsumexp
from scipy.stats import entropy as scipy_entropy

from mistrust.attacks import signals
from mistrust.attacks.signals import (
    entropy,
    log_softmax,
    logit_confidence,
    loss,
    max_score,
    modified_entropy,
    probs_to_logits,
    softmax,
    top_k_scores,
)


def naive_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def naive_mentr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = naive_softmax(x)
    rows = np.arange(len(x))
    py = p[rows, y]
    other = p * np.log(1 - p)
    other[rows, y] = 0.0
    return -(1 - py) * np.log(py) - other.sum(axis=1)


@pytest.fixture
def moderate() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.normal(scale=2.0, size=(200, 6)), rng.integers(0, 6, 200)


def test_softmax_known_values() -> None:
    out = softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)], [1.0, 2.0]]))
    e = np.exp([1.0, 2.0])
    np.testing.assert_allclose(out, [[0.5, 0.5], [0.25, 0.75], e / e.sum()], rtol=1e-15)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(softmax(np.array([[1000.0, 0.0]])), [[1.0, 0.0]])


def test_log_softmax_keeps_precision_of_saturated_rows() -> None:
    out = log_softmax(np.array([[40.0, 0.0], [1.0, 2.0]]))
    assert out[0, 0] == pytest.approx(-np.exp(-40.0), rel=1e-12)  # naive log(softmax) gives 0
    np.testing.assert_allclose(out[1], np.log(naive_softmax(np.array([[1.0, 2.0]])))[0])


def test_entropy_uniform_is_log_c_and_matches_scipy(moderate) -> None:
    for c in (2, 10, 100):
        assert entropy(np.zeros((3, c))) == pytest.approx(np.log(c), rel=1e-14)
    x, _ = moderate
    np.testing.assert_allclose(entropy(x), scipy_entropy(naive_softmax(x), axis=1), rtol=1e-12)
    assert entropy(np.array([[1000.0, 0.0, 0.0]]))[0] == 0.0


def test_max_score_and_top_k(moderate) -> None:
    x, _ = moderate
    p = naive_softmax(x)
    np.testing.assert_allclose(max_score(x), p.max(axis=1), rtol=1e-14)
    for k in (1, 3, 6):
        np.testing.assert_allclose(
            top_k_scores(x, k), -np.sort(-p, axis=1)[:, :k], rtol=1e-13, atol=1e-300
        )
    wide = np.random.default_rng(0).normal(size=(50, 80))  # k > 8 uses np.sort; C > 64
    np.testing.assert_allclose(
        top_k_scores(wide, 10), -np.sort(-naive_softmax(wide), axis=1)[:, :10], rtol=1e-13
    )
    np.testing.assert_allclose(
        entropy(wide), scipy_entropy(naive_softmax(wide), axis=1), rtol=1e-12
    )
    for bad in (0, 7, 2.0):
        with pytest.raises(ValueError, match="k must be"):
            top_k_scores(x, bad)


def test_loss_matches_torch_and_is_precise(moderate) -> None:
    x, y = moderate
    ref = torch.nn.functional.cross_entropy(
        torch.from_numpy(x), torch.from_numpy(y), reduction="none"
    ).numpy()
    np.testing.assert_allclose(loss(x, y), ref, rtol=1e-12)
    # confident and correct: loss = log1p(e^-50), naive -log(softmax) gives 0
    assert loss(np.array([[50.0, 0.0]]), np.array([0]))[0] == pytest.approx(np.exp(-50), rel=1e-12)
    assert loss(np.array([[5000.0, 0.0]]), np.array([1]))[0] == 5000.0


def test_logit_confidence_vs_naive_and_extremes(moderate) -> None:
    x, y = moderate
    p = naive_softmax(x)
    py = p[np.arange(len(x)), y]
    np.testing.assert_allclose(logit_confidence(x, y), np.log(py) - np.log(1 - py), rtol=1e-10)
    extreme = np.array(
        [[800.0, 0.0, 0.0], [0.0, 800.0, 0.0], [1000.0, 0.0, -5.0], [30.0, 0.0, 0.0]]
    )
    out = logit_confidence(extreme, np.array([0, 0, 0, 0]))
    expect = [
        800 - np.log(2),
        -800 - np.log1p(np.exp(-800)),
        1000 - logsumexp([0, -5]),
        30 - np.log(2),
    ]
    np.testing.assert_allclose(out, expect, rtol=1e-14)
    assert np.isfinite(out).all()


def test_modified_entropy_vs_naive(moderate) -> None:
    x, y = moderate
    np.testing.assert_allclose(modified_entropy(x, y), naive_mentr(x, y), rtol=1e-10)
    ties = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(
        modified_entropy(ties, np.array([0, 2, 1])),
        naive_mentr(ties, np.array([0, 2, 1])),
        rtol=1e-12,
    )
    # wrong and confident: finite and large; right and confident: ~0
    out = modified_entropy(np.array([[900.0, 0.0], [900.0, 0.0]]), np.array([1, 0]))
    assert np.isfinite(out).all() and out[0] > 800 and out[1] == pytest.approx(0.0, abs=1e-300)


def test_ties_in_the_maximum(moderate) -> None:
    x = np.array([[2.0, 2.0, 1.0], [0.0, 0.0, 0.0]])
    y = np.array([1, 2])
    p = naive_softmax(x)
    np.testing.assert_allclose(loss(x, y), -np.log(p[[0, 1], y]), rtol=1e-14)
    np.testing.assert_allclose(max_score(x), p.max(axis=1), rtol=1e-14)
    np.testing.assert_allclose(entropy(x), scipy_entropy(p, axis=1), rtol=1e-14)
    py = p[[0, 1], y]
    np.testing.assert_allclose(logit_confidence(x, y), np.log(py / (1 - py)), rtol=1e-14)


def test_float32_input_equals_its_float64_value(moderate) -> None:
    x, y = moderate
    x32 = x.astype(np.float32)
    for fn in (max_score, entropy):
        np.testing.assert_array_equal(fn(x32), fn(x32.astype(np.float64)))
    for fn in (loss, logit_confidence, modified_entropy):
        np.testing.assert_array_equal(fn(x32, y), fn(x32.astype(np.float64), y))
    np.testing.assert_array_equal(top_k_scores(x32, 3), top_k_scores(x32.astype(np.float64), 3))


def test_chunking_does_not_change_results(moderate, monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = moderate
    full = [max_score(x), entropy(x), loss(x, y), modified_entropy(x, y), top_k_scores(x, 2)]
    monkeypatch.setattr(signals, "_CHUNK_ELEMENTS", 7 * x.shape[1])
    chunked = [max_score(x), entropy(x), loss(x, y), modified_entropy(x, y), top_k_scores(x, 2)]
    for a, b in zip(full, chunked, strict=True):
        np.testing.assert_array_equal(a, b)


def test_probs_to_logits_round_trip() -> None:
    p = np.array([[0.7, 0.3, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(softmax(probs_to_logits(p)), p, atol=1e-300, rtol=1e-14)
    assert np.isfinite(probs_to_logits(p)).all()
    for bad in (np.array([[0.5, 1.5]]), np.array([0.5, 0.5]), np.array([[np.nan, 1.0]])):
        with pytest.raises(ValueError):
            probs_to_logits(bad)


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (np.array([[np.nan, 0.0]]), np.array([0]), "NaN or Inf in 1 of 1 rows"),
        (np.array([[np.inf, 0.0]]), np.array([0]), "NaN or Inf"),
        (np.zeros(3), np.array([0]), "2-D"),
        (np.zeros((3, 1)), np.zeros(3, int), "at least 2 classes"),
        (np.zeros((3, 2)), np.zeros(4, int), "3 rows but labels have 4"),
        (np.zeros((3, 2)), np.array([0, 1, 2]), r"\[0, 2\)"),
        (np.zeros((3, 2)), np.array([0.0, 1.5, 0.0]), "integers"),
        (np.array([["a", "b"]]), np.array([0]), "numeric"),
    ],
)
def test_bad_inputs(logits, labels, match) -> None:
    with pytest.raises(ValueError, match=match):
        loss(logits, labels)


def test_integral_float_labels_are_accepted(moderate) -> None:
    x, y = moderate
    np.testing.assert_array_equal(loss(x, y.astype(float)), loss(x, y))


finite_logits = st.integers(2, 6).flatmap(
    lambda c: arrays(np.float64, (5, c), elements=st.floats(-1e3, 1e3, allow_subnormal=False))
)


@settings(max_examples=60, deadline=None)
@given(x=finite_logits, shift=st.floats(-50, 50))
def test_signal_ranges_and_shift_invariance(x: np.ndarray, shift: float) -> None:
    c = x.shape[1]
    y = np.arange(len(x)) % c
    h, ms = entropy(x), max_score(x)
    assert np.all((h >= -1e-12) & (h <= np.log(c) + 1e-12))
    assert np.all((ms >= 1 / c - 1e-12) & (ms <= 1.0))
    assert np.all(loss(x, y) >= 0) and np.all(modified_entropy(x, y) >= 0)
    assert np.isfinite(logit_confidence(x, y)).all()
    xs = x + shift
    np.testing.assert_allclose(entropy(xs), h, atol=1e-9)
    np.testing.assert_allclose(loss(xs, y), loss(x, y), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        logit_confidence(xs, y), logit_confidence(x, y), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_signals_of_narrow_logits_equal_those_of_the_widened_logits(dtype) -> None:
    """The row max is taken in the input's dtype, then widened: bit for bit the same as on
    float64 logits (ties for the max, saturated rows and underflowed ``rest`` included)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 6)) * rng.choice([1.0, 30.0, 900.0], size=(400, 1))
    x[::3, 2] = x[::3].max(axis=1)  # tied maxima
    x = x.astype(dtype)
    y = rng.integers(0, 6, 400)
    wide = x.astype(np.float64)
    for name in ("loss", "logit_confidence", "modified_entropy"):
        fn = getattr(signals, name)
        assert fn(x, y).tobytes() == fn(wide, y).tobytes(), name
    for name in ("max_score", "entropy", "log_softmax"):
        fn = getattr(signals, name)
        assert fn(x).tobytes() == fn(wide).tobytes(), name
