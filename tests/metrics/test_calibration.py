import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from mistrust.metrics.reliability import (
    accuracy,
    ece,
    mmps,
    nll,
    overconfidence_error,
    reliability_bins,
    softmax,
)


def _logits_from_probs(probs: list[list[float]]) -> np.ndarray:
    return np.log(np.asarray(probs, dtype=np.float64))


# Four samples, two bins ([0, .5), [.5, 1]); confidences .4 .45 | .6 .9
HAND_PROBS = [
    [0.40, 0.35, 0.25],  # conf .40, pred 0
    [0.30, 0.45, 0.25],  # conf .45, pred 1
    [0.60, 0.30, 0.10],  # conf .60, pred 0
    [0.05, 0.05, 0.90],  # conf .90, pred 2
]
HAND_LABELS = np.array([0, 0, 1, 2])  # correct, wrong, wrong, correct


def test_ece_hand_example():
    logits = _logits_from_probs(HAND_PROBS)
    # bin 0: acc 1/2, conf .425 -> |.5-.425| = .075 ; bin 1: acc 1/2, conf .75 -> .25
    expected = 0.5 * 0.075 + 0.5 * 0.25
    assert ece(logits, HAND_LABELS, n_bins=2) == pytest.approx(expected, abs=1e-12)


def test_overconfidence_error_hand_example():
    logits = _logits_from_probs(HAND_PROBS)
    # bin 0 under-confident (conf .425 < acc .5) contributes 0; bin 1: .5 * .75 * (.75 - .5)
    expected = 0.5 * 0.75 * 0.25
    assert overconfidence_error(logits, HAND_LABELS, n_bins=2) == pytest.approx(expected, abs=1e-12)


def test_reliability_bins_hand_example():
    bins = reliability_bins(_logits_from_probs(HAND_PROBS), HAND_LABELS, n_bins=2)
    np.testing.assert_allclose(bins["edges"], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(bins["count"], [2, 2])
    np.testing.assert_allclose(bins["accuracy"], [0.5, 0.5])
    np.testing.assert_allclose(bins["confidence"], [0.425, 0.75])


@pytest.mark.parametrize(
    "seed,n_bins,scale", [(0, 15, 1.0), (1, 15, 4.0), (2, 10, 0.3), (3, 7, 2.0)]
)
def test_ece_matches_torchmetrics(seed: int, n_bins: int, scale: float):
    rng = np.random.default_rng(seed)
    n, c = 500, 6
    logits = rng.normal(size=(n, c)) * scale
    labels = rng.integers(0, c, size=n)
    labels[:200] = logits[:200].argmax(1)  # a mix of right and wrong predictions
    probs = torch.as_tensor(softmax(logits), dtype=torch.float32)
    ref = multiclass_calibration_error(
        probs, torch.as_tensor(labels), num_classes=c, n_bins=n_bins, norm="l1"
    )
    assert ece(logits, labels, n_bins=n_bins) == pytest.approx(float(ref), abs=1e-5)


def test_perfectly_calibrated_bins_have_zero_errors():
    # confidence 1 and always right -> ECE = OE = 0
    logits = np.array([[50.0, 0.0], [0.0, 50.0]])
    labels = np.array([0, 1])
    assert ece(logits, labels) == pytest.approx(0.0, abs=1e-12)
    assert overconfidence_error(logits, labels) == pytest.approx(0.0, abs=1e-12)
    # and always wrong -> ECE = 1, OE = 1
    assert ece(logits, 1 - labels) == pytest.approx(1.0)
    assert overconfidence_error(logits, 1 - labels) == pytest.approx(1.0)


def test_accuracy_nll_mmps():
    logits = _logits_from_probs(HAND_PROBS)
    assert accuracy(logits, HAND_LABELS) == 0.5
    expected_nll = -np.mean(np.log([0.40, 0.30, 0.30, 0.90]))
    assert nll(logits, HAND_LABELS) == pytest.approx(expected_nll, rel=1e-12)
    assert mmps(logits) == pytest.approx(np.mean([0.40, 0.45, 0.60, 0.90]))


def test_nll_matches_torch_and_is_stable_for_huge_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(64, 5)) * 1e4
    labels = rng.integers(0, 5, size=64)
    ref = torch.nn.functional.cross_entropy(torch.as_tensor(logits), torch.as_tensor(labels))
    assert np.isfinite(nll(logits, labels))
    assert nll(logits, labels) == pytest.approx(float(ref), rel=1e-9)
    assert np.isfinite(softmax(logits)).all()
    assert 0.0 <= ece(logits, labels) <= 1.0


def test_shift_invariance_log_probs_equal_logits():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(50, 4))
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    labels = rng.integers(0, 4, size=50)
    assert ece(logp, labels) == pytest.approx(ece(logits, labels))
    assert nll(logp, labels) == pytest.approx(nll(logits, labels))


@pytest.mark.parametrize(
    "logits,labels",
    [
        (np.zeros((3, 2)), np.zeros(4, dtype=int)),  # length mismatch
        (np.zeros(3), np.zeros(3, dtype=int)),  # 1-d logits
        (np.full((3, 2), np.nan), np.zeros(3, dtype=int)),  # NaN
        (np.zeros((3, 2)), np.array([0, 1, 2])),  # label out of range
        (np.zeros((3, 2)), np.zeros(3)),  # float labels
    ],
)
def test_bad_inputs_raise(logits: np.ndarray, labels: np.ndarray):
    with pytest.raises(ValueError):
        ece(logits, labels)


def test_bad_n_bins_raises():
    with pytest.raises(ValueError, match="n_bins"):
        ece(np.zeros((2, 2)), np.zeros(2, dtype=int), n_bins=0)
