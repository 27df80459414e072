"""Verdicts of constructed audits whose right answer is known.

Two-class logits ``[margin, 0]`` (max score rises with the margin) and 8x8 "images";
members and in-distribution non-members always come from one input distribution.
"""

from __future__ import annotations

import numpy as np
import pytest

import mistrust
from mistrust.checks import (
    INCONCLUSIVE,
    LEAKAGE_SHOWN,
    NOT_SHOWN,
    VERDICT_CODES,
    blind_scores,
    label_of,
    pixel_features,
    verdict,
)
from mistrust.checks.assemble import add_verdicts, verdict_of_rows
from mistrust.checks.stats import holm
from mistrust.metrics import auroc
from mistrust.rows import MetricRow

N = 300


def _logits(margins: np.ndarray) -> np.ndarray:
    return np.stack([margins, np.zeros_like(margins)], axis=1)


def _role(rng, member_margin: float, nonmember_margin: float) -> tuple:
    margins = np.r_[rng.normal(member_margin, 1, N), rng.normal(nonmember_margin, 1, N)]
    return _logits(margins), np.zeros(2 * N, int), np.arange(2 * N) < N


def _images(rng, n: int, shift: float = 0.0) -> np.ndarray:
    return rng.normal(shift, 1, size=(n, 1, 8, 8))


def _audit(target_margins, shadow_margins=(4.0, 1.0), eval_sets=None, **kw):
    rng = np.random.default_rng(0)
    shadow = _role(rng, *shadow_margins)
    target = _role(rng, *target_margins)
    return mistrust.audit(shadow, target, eval_sets=eval_sets or {}, **kw)


def _label(result, attack: str, ds: str) -> str:
    return label_of(result.value(attack, ds, "verdict"))


def _reason(result, attack: str, ds: str) -> str:
    values = {r[:4]: r.value for r in result.rows}
    v = verdict_of_rows(values, result.rows[0].variant, attack, ds)
    assert v.code == result.value(attack, ds, "verdict")  # the report re-derives the same
    return v.reason


INPUTS = {"target": _images(np.random.default_rng(1), 2 * N)}


def test_a_memorising_model_shows_leakage() -> None:
    r = _audit((4.0, 1.0), attacks=["threshold", "loss"], inputs=INPUTS)
    for attack in ("threshold", "loss"):
        assert _label(r, attack, "original") == LEAKAGE_SHOWN
        assert "beats the blind baseline" in _reason(r, attack, "original")
        assert abs(r.value(attack, "original", "baseline_auroc") - 0.5) < 0.1
        assert r.value(attack, "original", "flag_null") == 0.0
        assert r.value(attack, "original", "epsilon_lower_bound") > 0.5


def test_a_model_that_does_not_memorise_shows_nothing() -> None:
    r = _audit((2.0, 2.0), attacks=["threshold"], inputs=INPUTS)
    assert _label(r, "threshold", "original") == NOT_SHOWN
    assert "is not above chance (0.5)" in _reason(r, "threshold", "original")
    assert r.value("threshold", "original", "epsilon_lower_bound") == 0.0


def test_a_shifted_set_is_not_blamed_on_shift_alone() -> None:
    # the model does not memorise, but is less confident on the shifted inputs: the attack
    # separates the members from that set, and so does a classifier that never saw the
    # model. That explains the attack's success; it does not show the model leaks nothing
    rng = np.random.default_rng(5)
    shifted = _logits(rng.normal(0.0, 0.3, N))  # max score near 1/2
    inputs = INPUTS | {"shifted": _images(rng, N, shift=0.5)}
    r = _audit((3.0, 3.0), eval_sets={"shifted": shifted}, attacks=["threshold"], inputs=inputs)
    assert r.value("threshold", "shifted", "auroc_ci_low") > 0.9  # the attack "succeeds"
    assert r.value("threshold", "shifted", "baseline_auroc") > 0.99
    assert _label(r, "threshold", "shifted") == INCONCLUSIVE
    assert _reason(r, "threshold", "shifted").startswith("distribution shift not ruled out")
    assert _label(r, "threshold", "original") == NOT_SHOWN


def test_without_inputs_the_verdict_says_the_baseline_was_not_run() -> None:
    rng = np.random.default_rng(5)
    r = _audit((4.0, 1.0), eval_sets={"ood": _logits(rng.normal(0.0, 0.3, N))}, attacks=["loss"])
    assert _label(r, "loss", "original") == LEAKAGE_SHOWN
    assert _reason(r, "loss", "original").endswith("blind baseline not run (no inputs given)")
    assert _label(r, "loss", "ood") == INCONCLUSIVE
    assert "distribution shift between the members and ood is not ruled out" in _reason(
        r, "loss", "ood"
    )
    assert not any(row.metric.startswith("baseline_") for row in r.rows)


def test_constant_decisions_are_degenerate() -> None:
    # the shadow puts the threshold near margin 4; every target sample is far above it
    r = _audit((12.0, 12.0), attacks=["threshold"], inputs=INPUTS)
    assert r.value("threshold", "original", "tpr") == r.value("threshold", "original", "fpr") == 1
    assert r.value("threshold", "original", "flag_constant") == 1.0
    assert _label(r, "threshold", "original") == INCONCLUSIVE
    assert _reason(r, "threshold", "original") == (
        "degenerate attack: constant decisions (TPR 1.000, FPR 1.000)"
    )


def test_inverted_polarity_is_degenerate_on_every_set() -> None:
    rng = np.random.default_rng(2)
    r = _audit(
        (0.0, 3.0),
        eval_sets={"ood": _logits(rng.normal(-3.0, 1, N))},
        attacks=["threshold"],
        inputs=INPUTS | {"ood": _images(rng, N)},
    )
    assert r.value("threshold", "original", "auroc") < 0.1
    assert r.value("threshold", "original", "flag_polarity") == 1.0
    for ds in ("original", "ood"):
        assert _label(r, "threshold", ds) == INCONCLUSIVE
        assert "inverted polarity" in _reason(r, "threshold", ds)


def test_baseline_scores_can_be_passed_instead_of_inputs() -> None:
    feats = pixel_features(INPUTS["target"])
    member = np.arange(2 * N) < N
    scores = {"original": blind_scores(feats, member, seed=42)}
    a = _audit((4.0, 1.0), attacks=["loss"], inputs=INPUTS)
    b = _audit((4.0, 1.0), attacks=["loss"], baseline_scores=scores)
    np.testing.assert_equal(a.rows, b.rows)  # NaN (an unresolved low-FPR TPR) equals NaN
    with pytest.raises(mistrust.errors.InputError, match="shape"):
        _audit((4.0, 1.0), attacks=["loss"], baseline_scores={"original": np.zeros(3)})
    with pytest.raises(mistrust.errors.InputError, match="not both"):
        _audit((4.0, 1.0), attacks=["loss"], baseline_scores=scores, inputs=INPUTS)


def test_blind_baseline_is_cross_fitted_and_deterministic() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(200, 400))  # more features than samples, no signal at all
    member = np.arange(200) < 100
    s = blind_scores(noise, member, seed=0)
    assert abs(auroc(s, member) - 0.5) < 0.15  # an in-sample fit would score ~1.0
    assert s.tobytes() == blind_scores(noise, member, seed=0).tobytes()
    shifted = noise + 0.5 * member[:, None]
    assert auroc(blind_scores(shifted, member, seed=0), member) > 0.95


def test_verdict_rules_in_order() -> None:
    ok = {
        "auroc": 0.7, "auroc_ci_low": 0.65, "auroc_ci_high": 0.75, "tpr": 0.6, "fpr": 0.3,
        "flag_constant": 0.0, "flag_ties": 0.0, "tied_fraction": 0.01, "iid_split": 0.0,
        "p_leakage": 0.001, "p_leakage_holm": 0.006,
        "baseline_auroc": 0.5, "baseline_auroc_ci_low": 0.45, "baseline_auroc_ci_high": 0.55,
        "auroc_minus_baseline": 0.2, "auroc_minus_baseline_ci_low": 0.1,
        "auroc_minus_baseline_ci_high": 0.3,
    }  # fmt: skip
    ind = ok | {"flag_null": 0.0, "flag_polarity": 0.0, "null_auroc": 0.5,
                "null_auroc_ci_low": 0.4, "null_auroc_ci_high": 0.6}  # fmt: skip

    def label(cell, in_dist=ind, **kw) -> str:
        return verdict(cell, in_dist, set_name="s", in_distribution=True, **kw).label

    assert label(ok) == LEAKAGE_SHOWN
    assert label(ok | {"flag_ties": 1.0}) == INCONCLUSIVE
    assert label(ok, ind | {"flag_null": 1.0}) == INCONCLUSIVE
    assert label(ok, None) == INCONCLUSIVE
    assert label(ok, ind | {"flag_null": float("nan")}) == INCONCLUSIVE
    assert label(ok | {"auroc_ci_low": 0.5}) == NOT_SHOWN
    # not above the baseline at 95 %, so its p-value (the larger of the two) is large too
    assert label(ok | {"auroc_minus_baseline_ci_low": -0.01, "p_leakage_holm": 0.1}) == (
        INCONCLUSIVE
    )
    # above chance and the baseline at 95 %, but not after Holm over the attacks
    assert label(ok | {"p_leakage_holm": 0.011}) == NOT_SHOWN
    # a baseline that separates a set not known to be i.i.d.: shift explains the success
    # as well as membership does, whether or not the attack beats it
    shift = ok | {"auroc_minus_baseline_ci_low": -0.01, "baseline_auroc_ci_low": 0.51,
                  "p_leakage_holm": 0.1}  # fmt: skip
    assert label(shift) == INCONCLUSIVE
    assert label(shift | {"auroc_minus_baseline_ci_low": 0.01}) == INCONCLUSIVE
    # the same on a split i.i.d. by construction: the baseline decides nothing
    assert label(shift | {"iid_split": 1.0, "p_leakage_holm": 0.006}) == LEAKAGE_SHOWN
    assert label(shift | {"iid_split": 1.0, "p_leakage_holm": 0.02}) == NOT_SHOWN
    assert set(VERDICT_CODES.values()) == {1.0, 0.0, -1.0}


def test_holm_by_hand() -> None:
    # ascending 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04, and each
    # adjusted p-value at least the one before it (0.04 -> 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, 0.9]) == [1.0, 1.0]
    first, missing = holm([0.2, float("nan")])  # a test not run is not in the family
    assert first == 0.2 and np.isnan(missing)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([1.5])


def _cell_rows(attack: str, p: float) -> list[MetricRow]:
    # one attack on "original", above chance at 95 %, no baseline; only p_leakage differs
    cell = {
        "auroc": 0.56, "auroc_ci_low": 0.52, "auroc_ci_high": 0.6, "tpr": 0.6, "fpr": 0.4,
        "flag_constant": 0.0, "flag_ties": 0.0, "tied_fraction": 0.01, "iid_split": 1.0,
        "p_leakage": p, "flag_null": 0.0, "flag_polarity": 0.0, "null_auroc": 0.5,
        "null_auroc_ci_low": 0.4, "null_auroc_ci_high": 0.6,
    }  # fmt: skip
    return [MetricRow("base", attack, "original", k, v) for k, v in cell.items()]


def test_leakage_is_shown_by_holm_over_the_attacks_of_a_set() -> None:
    # Holm by hand: 0.002 x 3 = 0.006 <= 1 %; then 0.006 x 2 = 0.012 > 1 %: stop
    p = {"a": 0.006, "b": 0.002, "c": 0.03}
    rows = add_verdicts([r for a, x in p.items() for r in _cell_rows(a, x)])
    values = {r[:4]: r.value for r in rows}
    adjusted = {a: values[("base", a, "original", "p_leakage_holm")] for a in p}
    assert adjusted == pytest.approx({"a": 0.012, "b": 0.006, "c": 0.03})
    labels = {a: label_of(values[("base", a, "original", "verdict")]) for a in p}
    assert labels == {"a": NOT_SHOWN, "b": LEAKAGE_SHOWN, "c": NOT_SHOWN}
    why = verdict_of_rows(values, "base", "a", "original").reason
    assert why.endswith("not at the 1 % family-wise level (p 0.012, Holm-adjusted over 3 attacks)")
    # decided afresh: old verdict rows are replaced, not duplicated
    again = add_verdicts(rows)
    assert sorted(again) == sorted(rows) and len(again) == len(rows)


def test_six_attacks_each_above_chance_at_95_percent_are_not_enough() -> None:
    # a weak effect: every attack's AUROC interval excludes 0.5 (the old rule's "leakage
    # shown"), but their p-values (~0.002, nearly the same: the attacks are monotone in the
    # margin) do not survive Holm over the five attacks
    attacks = ["threshold", "entropy", "loss", "modified-entropy", "logit-confidence"]
    rng = np.random.default_rng(0)
    r = mistrust.audit(_role(rng, 4.0, 1.0), _role(rng, 2.2, 2.0), attacks=attacks)
    for a in attacks:
        assert r.value(a, "original", "auroc_ci_low") > 0.5
        assert r.value(a, "original", "p_leakage") < 0.01
        assert r.value(a, "original", "p_leakage_holm") > 0.01
        assert _label(r, a, "original") == NOT_SHOWN
        assert "not at the 1 % family-wise level" in _reason(r, a, "original")


def _mild_shift_audit(**kw):
    # a small leak (member margins 2.35 vs 2.0) and member images brighter by 0.06: the
    # blind baseline's interval just excludes 0.5, as it does by chance in 1 audit of 20
    rng = np.random.default_rng(1)
    images = rng.normal(0, 1, size=(2 * N, 1, 8, 8))
    images[:N] += 0.06
    shadow, target = _role(rng, 4.0, 1.0), _role(rng, 2.35, 2.0)
    return mistrust.audit(shadow, target, attacks=["threshold"], inputs={"target": images}, **kw)


def test_a_split_iid_by_construction_is_never_blamed_on_shift() -> None:
    r = _mild_shift_audit(iid_sets=["original"])
    assert r.value("threshold", "original", "baseline_auroc_ci_low") > 0.5
    assert r.value("threshold", "original", "auroc_minus_baseline_ci_low") < 0.0
    assert r.value("threshold", "original", "iid_split") == 1.0
    assert _label(r, "threshold", "original") == LEAKAGE_SHOWN
    why = _reason(r, "threshold", "original")
    assert "split i.i.d. by construction, so no distribution shift" in why
    assert "shift not ruled out" not in why


def test_a_baseline_above_chance_elsewhere_is_inconclusive_not_shift() -> None:
    r = _mild_shift_audit()
    assert r.value("threshold", "original", "iid_split") == 0.0
    assert r.value("threshold", "original", "baseline_auroc_ci_low") > 0.5
    assert _label(r, "threshold", "original") == INCONCLUSIVE
    why = _reason(r, "threshold", "original")
    assert why.startswith("distribution shift not ruled out")
    assert why.endswith("membership is neither shown nor ruled out")
    with pytest.raises(mistrust.errors.InputError, match=r"iid_sets names \['train'\]"):
        _mild_shift_audit(iid_sets=["train"])


def _iid(cfg) -> tuple[str, ...]:
    from mistrust.study.data import iid_sets

    return iid_sets(cfg.data, cfg.eval)


def test_the_run_knows_which_splits_are_iid() -> None:
    from mistrust.config import ConfigError, load_config

    # digits: mistrust halves scikit-learn's one set with a seed; Fashion-MNIST: the
    # published train / test files, which mistrust cannot vouch for
    assert _iid(load_config("smoke")) == ("original",)
    assert _iid(load_config("default")) == ()
    assert _iid(load_config("default", ["data.stand_in=true"])) == ("original",)
    assert _iid(load_config("smoke", ["eval.sets=[noise]"])) == ()
    # a user who vouches for a split declares it; the declaration is checked against eval.sets
    declared = load_config("default", ["eval.iid_sets=[original]"])
    assert _iid(declared) == ("original",)
    with pytest.raises(ConfigError, match="eval.iid_sets: 'svhn' is not in eval.sets"):
        load_config("default", ["eval.iid_sets=[svhn]"])


def test_a_set_too_small_to_cross_fit_gets_no_baseline() -> None:
    rng = np.random.default_rng(6)
    one = _logits(np.array([0.0]))
    inputs = INPUTS | {"one": _images(rng, 1)}
    r = _audit((4.0, 1.0), eval_sets={"one": one}, attacks=["loss"], inputs=inputs)
    assert ("loss", "one", "baseline_auroc") not in {
        (x.attack, x.dataset, x.metric) for x in r.rows
    }
    assert "baseline_auroc" in {x.metric for x in r.rows if x.dataset == "original"}


def test_inputs_of_the_wrong_shape_are_input_errors() -> None:
    with pytest.raises(mistrust.errors.InputError, match=r"inputs\['target'\].*\(N, C, H, W\)"):
        _audit((4.0, 1.0), attacks=["loss"], inputs={"target": np.zeros((2 * N, 64))})
    with pytest.raises(mistrust.errors.InputError, match="rows but the target has"):
        _audit((4.0, 1.0), attacks=["loss"], inputs={"target": np.zeros((3, 1, 4, 4))})
    with pytest.raises(mistrust.errors.InputError, match="under the key 'target'"):
        _audit((4.0, 1.0), attacks=["loss"], inputs={"original": np.zeros((3, 1, 4, 4))})
