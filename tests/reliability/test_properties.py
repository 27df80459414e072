"""Property-based tests of metrics and attacks on random inputs (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mistrust.attacks import (
    SCORE_BASED_ATTACKS,
    EntropyAttack,
    ThresholdAttack,
    create_attack,
    signals,
)
from mistrust.errors import InputError
from mistrust.metrics import attack_metrics
from mistrust.metrics.attack import METRIC_KEYS
from mistrust.metrics.rates import auroc, oracle_threshold, roc_curve

SETTINGS = settings(max_examples=50, deadline=None)
RATES = [k for k in METRIC_KEYS if not k.startswith(("n_", "mmps_", "advantage"))]
LOW_FPR = {"tpr_at_0.1fpr": 0.001, "tpr_at_1fpr": 0.01}


@st.composite
def labelled_scores(draw, max_n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(N,)`` (often tied: drawn from a small pool) and membership with both classes."""
    n = draw(st.integers(2, max_n))
    pool = draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=64), min_size=1, max_size=n))
    s = np.asarray(draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)))
    m = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    i = draw(st.integers(0, n - 1))
    j = (i + draw(st.integers(1, n - 1))) % n  # another sample
    m[i], m[j] = True, False
    return s, m


@st.composite
def logits_strategy(draw, *, min_rows: int = 4, max_rows: int = 30, magnitude: float = 1e4):
    """Logits ``(N, C)`` mixing ordinary values, extreme magnitudes (up to ``magnitude``) and ties."""
    n = draw(st.integers(min_rows, max_rows))
    c = draw(st.integers(2, 6))
    values = st.one_of(
        st.floats(-10, 10, allow_nan=False),
        st.floats(-magnitude, magnitude, allow_nan=False),
        st.sampled_from([-magnitude, magnitude, 0.0]),
    )
    x = draw(hnp.arrays(np.float64, (n, c), elements=values))
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    return x, y


def _membership(n: int, seed: int) -> np.ndarray:
    m = np.random.default_rng(seed).random(n) < 0.5
    m[0], m[1] = True, False
    return m


# ---------------------------------------------------------------- metrics


@SETTINGS
@given(labelled_scores(), st.integers(0, 2**32 - 1))
def test_rates_lie_in_unit_interval(data, seed) -> None:
    s, m = data
    predicted = np.random.default_rng(seed).random(len(s)) < 0.5
    max_score = np.random.default_rng(seed + 1).random(len(s))
    out = attack_metrics(s, m, predicted, max_score=max_score)
    for key in RATES:
        if key == "precision" and math.isnan(out[key]):
            assert not predicted.any()  # undefined only when nothing is predicted member
            continue
        if key in LOW_FPR and math.isnan(out[key]):
            # not reported only where the non-members allow fewer than 5 false positives
            assert LOW_FPR[key] * out["n_nonmembers"] < 5
            continue
        assert 0.0 <= out[key] <= 1.0, (key, out[key])
    assert -1.0 <= out["advantage"] <= 1.0
    assert out["tpr_ci_low"] <= out["tpr"] <= out["tpr_ci_high"]
    assert out["fpr_ci_low"] <= out["fpr"] <= out["fpr_ci_high"]
    assert out["n_members"] + out["n_nonmembers"] == len(s)


@SETTINGS
@given(labelled_scores())
def test_auroc_of_negated_scores(data) -> None:
    s, m = data
    assert auroc(-s, m) == pytest.approx(1.0 - auroc(s, m), abs=1e-12)


@SETTINGS
@given(labelled_scores(), st.randoms(use_true_random=False))
def test_metrics_ignore_sample_order(data, rnd) -> None:
    s, m = data
    rng = np.random.default_rng(rnd.getrandbits(32))
    predicted = rng.random(len(s)) < 0.5
    max_score = rng.random(len(s))
    perm = rng.permutation(len(s))
    a = attack_metrics(s, m, predicted, max_score=max_score)
    b = attack_metrics(s[perm], m[perm], predicted[perm], max_score=max_score[perm])
    for key in METRIC_KEYS:
        assert a[key] == pytest.approx(b[key], abs=1e-12, nan_ok=True), key
    assert oracle_threshold(s, m) == oracle_threshold(s[perm], m[perm])


@SETTINGS
@given(labelled_scores())
def test_roc_curve_is_monotone_from_origin_to_corner(data) -> None:
    fpr, tpr, thr = roc_curve(*data)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all() and (np.diff(thr) < 0).all()


# ---------------------------------------------------------------- thresholds


SIGNALS = ["threshold", "loss", "modified-entropy", "logit-confidence"]


@SETTINGS
@given(logits_strategy(), st.sampled_from(SIGNALS), st.integers(0, 1000))
def test_threshold_lies_on_an_observed_score_or_just_above_the_max(data, signal, seed) -> None:
    x, y = data
    m = _membership(len(x), seed)
    attack = ThresholdAttack(signal).fit(x, y, m)
    s = attack.score(x, y)
    t = attack.threshold_
    assert math.isfinite(t)
    assert t in set(s.tolist()) or t == np.nextafter(s.max(), np.inf), (t, s.min(), s.max())
    # the shadow decisions reproduce the chosen ROC point
    pred = attack.decide(s)
    assert pred[m].mean() == attack.shadow_tpr_ and pred[~m].mean() == attack.shadow_fpr_


@SETTINGS
@given(logits_strategy(), st.integers(0, 1000))
def test_entropy_threshold_lies_between_shadow_entropies(data, seed) -> None:
    x, y = data
    m = _membership(len(x), seed)
    attack = EntropyAttack(n_thresholds=500).fit(x, y, m)
    h = signals.entropy(x)
    assert h.min() <= attack.threshold_ <= h.max()
    assert 0.0 <= attack.shadow_accuracy_ <= 1.0


@SETTINGS
@given(logits_strategy(), st.integers(0, 1000), st.randoms(use_true_random=False))
def test_fitted_thresholds_ignore_sample_order(data, seed, rnd) -> None:
    x, y = data
    m = _membership(len(x), seed)
    perm = np.random.default_rng(rnd.getrandbits(32)).permutation(len(x))
    for make in (
        lambda: ThresholdAttack("threshold"),
        lambda: ThresholdAttack("loss", class_thresholds=True),
        lambda: EntropyAttack(n_thresholds=500),
    ):
        a, b = make().fit(x, y, m), make().fit(x[perm], y[perm], m[perm])
        assert a.threshold_ == b.threshold_
        assert a.operating_score_ == b.operating_score_
        assert np.array_equal(a.score(x, y)[perm], b.score(x[perm], y[perm]))


# ---------------------------------------------------------------- scores


@pytest.fixture(scope="module")
def fitted_attacks() -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 6)) * 3
    y = rng.integers(0, 6, 60)
    m = np.arange(60) % 2 == 0
    x[m, y[m]] += 4
    out = {}
    for name in SCORE_BASED_ATTACKS:
        attack = create_attack(name, top_k=2, seed=0)
        if name == "salem":
            attack.max_epochs = 30
        out[name] = attack.fit(x, y, m)
    return out


@SETTINGS
@given(logits_strategy(magnitude=1e4))
def test_scores_are_finite_for_finite_logits(fitted_attacks, data) -> None:
    x, y = data
    x = np.pad(x, ((0, 0), (0, 6 - x.shape[1])), constant_values=-1e4)  # fitted on 6 classes
    for name, attack in fitted_attacks.items():
        s = attack.score(x, y)
        assert s.shape == (len(x),) and s.dtype == np.float64
        assert np.isfinite(s).all(), (name, x[~np.isfinite(s)])
        assert np.array_equal(attack.predict(x, y), attack.decide(s))


@SETTINGS
@given(logits_strategy(magnitude=1e4))
def test_signals_are_finite_and_in_range(data) -> None:
    x, y = data
    c = x.shape[1]
    p = signals.max_score(x)
    assert np.isfinite(p).all() and (p >= 1.0 / c - 1e-12).all() and (p <= 1.0).all()
    h = signals.entropy(x)
    assert np.isfinite(h).all() and (h >= -1e-12).all() and (h <= math.log(c) + 1e-9).all()
    for fn in (signals.loss, signals.modified_entropy, signals.logit_confidence):
        assert np.isfinite(fn(x, y)).all(), fn.__name__
    assert (signals.loss(x, y) >= 0).all()


@SETTINGS
@given(
    logits_strategy(),
    st.sampled_from([np.nan, np.inf, -np.inf]),
    st.integers(0, 10**6),
)
def test_any_non_finite_logit_is_refused(data, bad, where) -> None:
    x, y = data
    x = x.copy()
    x.flat[where % x.size] = bad
    with pytest.raises(InputError, match="NaN or Inf in 1 of"):
        signals.max_score(x)
    with pytest.raises(InputError, match="NaN or Inf"):
        ThresholdAttack("loss").fit(x, y, _membership(len(x), 0))
