from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from mistrust.metrics import METRIC_KEYS, attack_metrics, auroc, clopper_pearson, mmps
from mistrust.metrics.rates import Ranked

KEYS = (
    "precision tpr fpr accuracy advantage auroc aupr fpr_at_95tpr tpr_at_0.1fpr tpr_at_1fpr "
    "tpr_ci_low tpr_ci_high fpr_ci_low fpr_ci_high mmps_tp mmps_fp mmps_fn mmps_tn "
    "oracle_tpr oracle_fpr oracle_accuracy n_members n_nonmembers"
).split()


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    m = np.r_[np.ones(300, bool), np.zeros(200, bool)]
    score = rng.normal(size=500) + m
    max_score = rng.uniform(0.2, 1.0, 500)
    return score, m, score >= 0.3, max_score


def test_keys_types_and_sklearn_agreement(case) -> None:
    score, m, pred, ms = case
    out = attack_metrics(score, m, pred, max_score=ms)
    assert list(out) == KEYS == list(METRIC_KEYS)
    assert all(type(v) is float for v in out.values())
    assert out["precision"] == pytest.approx(skm.precision_score(m, pred))
    assert out["tpr"] == pytest.approx(skm.recall_score(m, pred))
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(m, pred))
    assert out["fpr"] == pytest.approx((pred & ~m).sum() / 200)
    assert out["advantage"] == out["tpr"] - out["fpr"]
    assert out["auroc"] == pytest.approx(skm.roc_auc_score(m, score))
    assert out["aupr"] == pytest.approx(skm.average_precision_score(m, score))
    assert (out["tpr_ci_low"], out["tpr_ci_high"]) == clopper_pearson(int((pred & m).sum()), 300)
    assert out["tpr_ci_low"] <= out["tpr"] <= out["tpr_ci_high"]
    assert out["fpr_ci_low"] <= out["fpr"] <= out["fpr_ci_high"]
    assert out["mmps_tp"] == pytest.approx(ms[pred & m].mean())
    assert out["mmps_tn"] == pytest.approx(ms[~pred & ~m].mean())
    assert (out["n_members"], out["n_nonmembers"]) == (300.0, 200.0)
    # predictions are a threshold on the same score, so hindsight can only do better
    assert out["oracle_tpr"] - out["oracle_fpr"] >= out["advantage"]
    assert out["oracle_accuracy"] >= 0.5


def test_nothing_predicted_member(case) -> None:
    score, m, _, ms = case
    out = attack_metrics(score, m, np.zeros(500, bool), max_score=ms)
    assert math.isnan(out["precision"])  # undefined, not 0
    assert out["tpr"] == out["fpr"] == 0.0 and out["accuracy"] == 0.4
    assert math.isnan(out["mmps_tp"]) and math.isnan(out["mmps_fp"])
    assert out["tpr_ci_low"] == 0.0 and 0 < out["tpr_ci_high"] < 0.02
    assert out["auroc"] == pytest.approx(auroc(score, m))  # threshold-free metrics unaffected


def test_everything_predicted_member(case) -> None:
    score, m, _, ms = case
    out = attack_metrics(score, m, np.ones(500, bool), max_score=ms)
    assert out["precision"] == 0.6 and out["tpr"] == out["fpr"] == 1.0
    assert out["tpr_ci_high"] == out["fpr_ci_high"] == 1.0
    assert math.isnan(out["mmps_fn"]) and math.isnan(out["mmps_tn"])


def test_all_scores_tied(case) -> None:
    _, m, pred, ms = case
    out = attack_metrics(np.ones(500), m, pred, max_score=ms)
    assert out["auroc"] == 0.5 and out["aupr"] == 0.6
    assert out["fpr_at_95tpr"] == 1.0 and Ranked(np.ones(500), m).tpr_at_fpr(0.01) == 0.0
    assert math.isnan(out["tpr_at_1fpr"])  # 200 non-members: 1 % allows 2 false positives
    assert out["oracle_tpr"] == out["oracle_fpr"] == 0.0  # first maximum: predict nothing


@pytest.mark.parametrize(
    ("n_out", "resolved"),
    # 5 false positives are needed: 1 % of 500 allows 5, of 499 only 4; 0.1 % needs 5,000
    [(500, {"tpr_at_1fpr"}), (499, set()), (5000, {"tpr_at_1fpr", "tpr_at_0.1fpr"})],
)
def test_low_fpr_tprs_are_nan_where_the_nonmembers_cannot_resolve_them(
    n_out: int, resolved: set[str]
) -> None:
    rng = np.random.default_rng(1)
    m = np.r_[np.ones(200, bool), np.zeros(n_out, bool)]
    score = rng.normal(size=len(m)) + 2 * m
    out = attack_metrics(score, m, score > 1, max_score=np.ones(len(m)))
    ranked = Ranked(score, m)
    for key, fpr in (("tpr_at_0.1fpr", 0.001), ("tpr_at_1fpr", 0.01)):
        if key in resolved:
            assert out[key] == ranked.tpr_at_fpr(fpr) > 0
        else:  # never a number that one or two non-members set
            assert math.isnan(out[key])


def test_a_nan_rate_is_named_in_the_error() -> None:
    r = Ranked(np.arange(4.0), np.array([True, False, True, False]))
    with pytest.raises(ValueError, match="fpr is NaN"):
        r.tpr_at_fpr(math.nan)
    with pytest.raises(ValueError, match="tpr is NaN"):
        r.fpr_at_tpr(math.nan)


def test_integer_predictions_and_bad_inputs(case) -> None:
    score, m, pred, ms = case
    assert attack_metrics(score, m, pred.astype(int), max_score=ms) == pytest.approx(
        attack_metrics(score, m, pred, max_score=ms), nan_ok=True
    )
    with pytest.raises(ValueError, match="predicted has shape"):
        attack_metrics(score, m, pred[:-1], max_score=ms)
    with pytest.raises(ValueError, match="max_score has shape"):
        attack_metrics(score, m, pred, max_score=ms[:3])
    with pytest.raises(ValueError, match="boolean"):
        attack_metrics(score, m, pred * 2.5, max_score=ms)


def test_mmps() -> None:
    assert mmps(np.array([0.5, 1.0, 0.9]), np.array([True, True, False])) == 0.75
    assert math.isnan(mmps(np.array([0.5]), np.array([False])))
    with pytest.raises(ValueError):
        mmps(np.ones(3), np.ones(2, bool))


def test_a_given_sort_gives_the_same_metrics(case) -> None:
    score, m, pred, ms = case
    want = attack_metrics(score, m, pred, max_score=ms)
    for aupr in ("average-precision", "trapezoid"):
        got = attack_metrics(score, m, pred, max_score=ms, aupr=aupr, ranked=Ranked(score, m))
        # the same bits; NaN (an unresolved low-FPR TPR) equal to NaN
        np.testing.assert_equal(got, attack_metrics(score, m, pred, max_score=ms, aupr=aupr))
    assert got.keys() == want.keys()
    with pytest.raises(ValueError, match="ranked holds 499 scores"):
        attack_metrics(score, m, pred, max_score=ms, ranked=Ranked(score[:-1], m[:-1]))
