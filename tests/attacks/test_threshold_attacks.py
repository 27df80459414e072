"""Rules of the threshold attacks (shadow ROC point, class thresholds) and the entropy sweep."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve as sk_roc_curve

from mistrust.attacks import EntropyAttack, ThresholdAttack, create_attack, signals
from mistrust.attacks.score_based import SIGNAL_SCORES


@pytest.mark.parametrize("signal", list(SIGNAL_SCORES))
def test_shadow_predictions_reproduce_the_chosen_roc_point(signal, shadow) -> None:
    logits, labels, is_member = shadow
    attack = ThresholdAttack(signal).fit(logits, labels, is_member)
    score = attack.score(logits, labels)
    fpr, tpr, thr = sk_roc_curve(is_member, score, drop_intermediate=False)
    best = np.argmax(tpr - fpr)
    assert attack.threshold_ == thr[best]
    pred = attack.predict(logits, labels)
    assert pred[is_member].mean() == tpr[best] == attack.shadow_tpr_
    assert pred[~is_member].mean() == fpr[best] == attack.shadow_fpr_


def test_ties_at_the_threshold_count_as_members() -> None:
    # saturated softmax: many max scores are exactly 1.0 in float64
    logits = np.array([[60.0, 0.0]] * 6 + [[1.0, 0.0]] * 4 + [[60.0, 0.0]] * 2 + [[1.0, 0.0]] * 8)
    is_member = np.arange(20) < 10
    attack = create_attack("threshold").fit(logits, np.zeros(20, int), is_member)
    assert attack.threshold_ == 1.0
    pred = attack.predict(logits, np.zeros(20, int))
    assert pred.sum() == 8  # the 6 + 2 saturated rows (paper's ``score > 1.0`` would give 0)


def test_useless_signal_predicts_nothing_with_a_finite_threshold() -> None:
    logits = np.zeros((10, 3))
    logits[:5, 0] = -1.0  # members have the higher loss: no threshold beats predicting nothing
    is_member = np.arange(10) < 5
    for class_thresholds in (False, True):
        attack = create_attack("loss", class_thresholds=class_thresholds)
        attack.fit(logits, np.zeros(10, int), is_member)
        top = (-signals.loss(logits, np.zeros(10, int))).max()
        assert attack.threshold_ == np.nextafter(top, np.inf)
        score = attack.score(logits, np.zeros(10, int))
        assert np.isfinite(score).all() and not attack.decide(score).any()


def test_class_thresholds(make_outputs) -> None:
    # class 0 is confident for everyone (members slightly more), class 1 is not
    logits, labels, is_member = make_outputs(n=600, n_classes=3, seed=2)
    logits[labels == 0, 0] += 6.0
    labels[(labels == 2) & is_member] = 1  # class 2 has no members -> global threshold
    attack = create_attack("loss", class_thresholds=True).fit(logits, labels, is_member)
    glob = create_attack("loss").fit(logits, labels, is_member)
    ct = attack.class_thresholds_
    assert ct.shape == (3,) and ct[2] == attack.threshold_ == glob.threshold_
    assert ct[0] != ct[1] and attack.operating_score_ == 0.0
    raw = -signals.loss(logits, labels)
    np.testing.assert_array_equal(attack.score(logits, labels), raw - ct[labels])
    np.testing.assert_array_equal(attack.predict(logits, labels), raw >= ct[labels])
    acc = lambda a: (a.predict(logits, labels) == is_member).mean()  # noqa: E731
    assert acc(attack) >= acc(glob)
    for c in (0, 1):  # each class's threshold maximises TPR - FPR on its own shadow rows
        m = labels == c
        fpr, tpr, thr = sk_roc_curve(is_member[m], raw[m], drop_intermediate=False)
        assert ct[c] == thr[np.argmax(tpr - fpr)]


def test_class_thresholds_ignored_where_not_applicable(shadow) -> None:
    a = create_attack("entropy", class_thresholds=True).fit(*shadow)
    b = create_attack("entropy").fit(*shadow)
    assert a.threshold_ == b.threshold_


def test_entropy_sweep_matches_the_papers_loop(shadow) -> None:
    logits, labels, is_member = shadow
    attack = EntropyAttack(n_thresholds=500).fit(logits, labels, is_member)
    h = signals.entropy(logits)
    best, theta_best = 0, 0.0
    for theta in np.linspace(h.min(), h.max(), 500):  # the paper's code, verbatim logic
        correct = (h[~is_member] >= theta).sum() + (h[is_member] < theta).sum()
        if correct > best:
            best, theta_best = correct, theta
    assert attack.threshold_ == theta_best
    assert attack.shadow_accuracy_ == best / len(h)
    assert attack.operating_score_ == -theta_best
    np.testing.assert_array_equal(attack.predict(logits, labels), h < theta_best)


def test_entropy_decision_is_strict() -> None:
    attack = EntropyAttack()
    attack.n_classes_, attack.operating_score_ = 2, -0.5
    np.testing.assert_array_equal(attack.decide(np.array([-0.5, -0.4, -0.6])), [False, True, False])


def test_unknown_signal() -> None:
    with pytest.raises(ValueError, match="unknown signal 'nope'"):
        ThresholdAttack("nope").fit(np.zeros((4, 2)), np.zeros(4, int), np.arange(4) < 2)
