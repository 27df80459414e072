import numpy as np
import pytest

from mistrust.calibration import TemperatureScaling, fit_temperature, scale_logits
from mistrust.metrics.reliability import ece, nll


def _overconfident(seed: int = 0, n: int = 2000, c: int = 5, true_t: float = 4.0):
    """Labels drawn from softmax(z); the model reports z * true_t (over-confident)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * 1.5
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(c, p=row) for row in p])
    return (z * true_t).astype(np.float32), labels


def test_scale_logits_identity_at_t1():
    logits = np.random.default_rng(0).normal(size=(10, 3))
    out = scale_logits(logits, 1.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, logits.astype(np.float32))


def test_scale_logits_divides():
    logits = np.array([[10.0, -20.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(scale_logits(logits, 10), [[1.0, -2.0, 0.0]])


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan"), float("inf")])
def test_scale_logits_rejects_bad_temperature(t: float):
    with pytest.raises(ValueError, match="temperature"):
        scale_logits(np.zeros((2, 2)), t)


def test_fit_temperature_lowers_nll_and_recovers_t():
    logits, labels = _overconfident()
    t = fit_temperature(logits, labels)
    assert 3.0 < t < 5.5
    assert nll(scale_logits(logits, t), labels) < nll(logits, labels)
    assert ece(scale_logits(logits, t), labels) < ece(logits, labels)


def test_fit_temperature_near_one_when_calibrated():
    logits, labels = _overconfident(seed=1, true_t=1.0)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.2)


def test_fit_temperature_separable_data_stays_finite():
    logits = np.array([[2.0, 0.0], [0.0, 2.0]] * 10)
    labels = np.array([0, 1] * 10)
    t = fit_temperature(logits, labels)
    assert np.isfinite(t) and 0 < t < 1


@pytest.mark.parametrize(
    "logits,labels",
    [
        (np.zeros((4, 3)), np.zeros(5, dtype=int)),
        (np.full((4, 3), np.nan), np.zeros(4, dtype=int)),
        (np.zeros(4), np.zeros(4, dtype=int)),
        (np.zeros((4, 3)), np.array([0, 1, 2, 3])),
    ],
)
def test_fit_temperature_bad_input(logits: np.ndarray, labels: np.ndarray):
    with pytest.raises(ValueError):
        fit_temperature(logits, labels)


def test_temperature_scaling_object_fixed_and_fitted():
    logits, labels = _overconfident()
    fixed = TemperatureScaling(4.0).fit()  # a fixed temperature reads no data
    assert fixed.temperature_ == 4.0
    np.testing.assert_allclose(fixed.transform(logits[:3]), logits[:3] / 4.0, rtol=1e-6)
    fitted = TemperatureScaling().fit(logits, labels)
    assert fitted.temperature_ == fit_temperature(logits, labels)
    assert 3.0 < fitted.temperature_ < 5.5


def test_temperature_scaling_object_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        TemperatureScaling(2.0).transform(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="held-out logits"):
        TemperatureScaling().fit()
    with pytest.raises(ValueError, match="temperature must be > 0"):
        TemperatureScaling(-1.0).fit()
