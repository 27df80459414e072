"""The paper's decision rule and score numerics, as options (known values by hand).

The float32 scores are checked against torch computed directly the way the paper's
attack code did (``torch.softmax``, ``torch.topk``, ``Categorical(probs=...).entropy()``
on float32 logits), an independent path from :mod:`mistrust.attacks.float32`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mistrust import audit
from mistrust.attacks import create_attack
from mistrust.attacks._mlp import unpack
from mistrust.attacks.signals import at_precision, entropy, max_score
from mistrust.metrics import auroc

LN2 = np.log(2.0)


def _paper_softmax(logits: np.ndarray) -> torch.Tensor:
    return torch.softmax(torch.from_numpy(logits.astype(np.float32)), dim=1)


def _paper_entropy(logits: np.ndarray) -> np.ndarray:
    probs = _paper_softmax(logits)
    return torch.distributions.Categorical(probs=probs).entropy().numpy().astype(np.float64)


def _gaps(c: int = 2) -> np.ndarray:
    """400 rows ``[g, 0, ..., 0]``, ``g = 15.005, 15.015, ..., 18.995``: ``rest = (c-1) e^-g``.

    For c = 2 a float32 softmax is exactly 1.0 once ``1 + rest`` rounds to 1 in
    float32, i.e. ``rest <= 2^-24`` (g >= 24 ln 2 = 16.636): 236 rows. Rounding the
    float64 ``1 / (1 + rest)`` to float32 gives 1.0 only for ``rest < 2^-25``
    (g > 25 ln 2 = 17.329): 167 rows. No gap lies within 0.003 of either boundary.
    (With more classes torch adds the terms one by one, so each ``e^-g`` below 2^-24
    vanishes on its own and the same 236 rows saturate.)
    """
    logits = np.zeros((400, c))
    logits[:, 0] = 15.005 + 0.01 * np.arange(400)
    return logits


def _saturated() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shadow: 3 members with a logit gap of 30 (max score 1 - 2e-13), 3 non-members at 0.9."""
    gap = np.log(0.9 / 0.1 * 2)  # 3 classes: p_max = 0.9 at this gap
    logits = np.zeros((6, 3))
    logits[:3, 0] = 30.0
    logits[3:, 0] = gap
    return logits, np.zeros(6, int), np.arange(6) < 3


def test_float32_scores_saturate_at_one() -> None:
    logits = np.array([[30.0, 0.0, 0.0], [25.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    top = max_score(logits)
    assert top[0] != top[1] and top[0] < 1.0  # float64 resolves both
    rounded = at_precision(top, "float32")
    assert rounded[0] == rounded[1] == 1.0  # float32: both exactly 1 (a tie)
    assert rounded[2] == pytest.approx(np.exp(5) / (np.exp(5) + 2), rel=1e-7) and rounded[2] < 1
    with pytest.raises(ValueError, match="precision"):
        at_precision(top, "float16")


def test_strict_threshold_at_one_predicts_no_member() -> None:
    logits, labels, member = _saturated()
    for precision, strict, expected in [
        ("float64", False, [True] * 3 + [False] * 3),  # threshold 1 - 2e-13, >=: the ROC point
        ("float64", True, [False] * 6),  # > its own value: nothing at or above it
        ("float32", False, [True] * 3 + [False] * 3),  # threshold exactly 1.0
        ("float32", True, [False] * 6),  # the paper: score > 1.0 never holds
    ]:
        attack = create_attack("threshold", strict_threshold=strict, score_precision=precision)
        attack.fit(logits, labels, member)
        assert attack.predict(logits, labels).tolist() == expected, (precision, strict)
    attack = create_attack("threshold", score_precision="float32").fit(logits, labels, member)
    assert attack.threshold_ == 1.0


def test_float32_ties_change_auroc() -> None:
    """Members at gaps 30 and 25 vs a non-member at 20: resolved in float64, tied in float32."""
    logits = np.zeros((3, 3))
    logits[:, 0] = [30.0, 25.0, 20.0]
    member = np.array([True, True, False])
    scores = create_attack("threshold").fit(logits, np.zeros(3, int), member)
    assert auroc(scores.score(logits, np.zeros(3, int)), member) == 1.0
    f32 = create_attack("threshold", score_precision="float32").fit(
        logits, np.zeros(3, int), member
    )
    s = f32.score(logits, np.zeros(3, int))
    assert s.tolist() == [1.0, 1.0, 1.0] and auroc(s, member) == 0.5  # all tied: one half


def test_salem_sigmoid_scores_and_same_decisions(shadow, target) -> None:
    logit = create_attack("salem", seed=1).fit(*shadow)
    sigmoid = create_attack("salem", seed=1, salem_score="sigmoid").fit(*shadow)
    logits, labels, _ = target
    s_logit, s_sig = logit.score(logits, labels), sigmoid.score(logits, labels)
    assert np.allclose(s_sig, 1.0 / (1.0 + np.exp(-s_logit)))
    assert sigmoid.operating_score_ == 0.5 and logit.operating_score_ == 0.0
    assert np.array_equal(logit.decide(s_logit), sigmoid.decide(s_sig))
    f32 = create_attack("salem", seed=1, salem_score="sigmoid", score_precision="float32").fit(
        *shadow
    )
    s32 = f32.score(logits, labels)
    assert np.array_equal(s32, s32.astype(np.float32).astype(np.float64))


def test_entropy_float32_values_are_float32(shadow) -> None:
    attack = create_attack("entropy", score_precision="float32").fit(*shadow)
    s = attack.score(shadow[0], shadow[1])
    assert np.array_equal(s, s.astype(np.float32).astype(np.float64))
    assert np.allclose(s, create_attack("entropy").fit(*shadow).score(shadow[0], shadow[1]))


def test_float32_max_score_is_the_paper_softmax() -> None:
    logits = _gaps()
    paper = _paper_softmax(logits).max(dim=1).values.numpy().astype(np.float64)
    assert 24 * LN2 - 15.005 == pytest.approx(1.631, abs=1e-3)  # the boundaries, by hand
    assert (paper == 1.0).sum() == 236 and (logits[paper == 1.0, 0] > 24 * LN2).all()
    rounded = at_precision(max_score(logits), "float32")  # rounding float64 is not the same
    assert (rounded == 1.0).sum() == 167 and (logits[rounded == 1.0, 0] > 25 * LN2).all()
    attack = create_attack("threshold", score_precision="float32")
    attack.fit(logits, np.zeros(400, int), np.arange(400) % 2 == 0)
    assert np.array_equal(attack.score(logits, np.zeros(400, int)), paper)
    assert np.array_equal(max_score(logits, precision="float32"), paper)
    rng = np.random.default_rng(0)  # ordinary rows: the same float32 values as torch
    x = rng.normal(size=(300, 10)) * rng.uniform(0.0, 30.0, size=(300, 1))
    assert np.array_equal(
        max_score(x, precision="float32"), _paper_softmax(x).max(dim=1).values.numpy()
    )
    with pytest.raises(ValueError, match="precision"):
        max_score(x, precision="float16")


def test_float32_entropy_is_categorical_entropy_and_ties() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 10)) * rng.uniform(0.0, 60.0, size=(300, 1))
    x[:50] = rng.normal(size=(50, 10))
    x[:50, 0] += 80.0  # 50 saturated rows: the float32 softmax is 1 and terms below e^-70
    h = entropy(x, precision="float32")
    assert np.array_equal(h, _paper_entropy(x))
    # Categorical clamps p to [eps, 1 - eps]: a one-hot row has H = -log(1 - eps)
    eps = float(np.finfo(np.float32).eps)
    assert np.unique(h[:50]).size == 1 and h[0] == pytest.approx(eps, rel=1e-6)
    assert h[0] == pytest.approx(1.19e-7, rel=2e-3) and (h[50:] >= h[0]).all()
    assert np.unique(entropy(x)[:50]).size == 50  # float64 resolves them
    attack = create_attack("entropy", score_precision="float32").fit(
        x, np.zeros(300, int), x[:, 0] > 0
    )
    assert np.array_equal(attack.score(x, np.zeros(300, int)), -_paper_entropy(x))


def test_float32_entropy_ties_move_auroc() -> None:
    """Members: 20 at gap 15 (H ~ 4e-5), 20 at gap 60; non-members: 40 at gap 80 (a
    scaled-like set, more confident than the members). float64: every non-member has
    the lower entropy, AUROC 0. float32: the gap-60 members tie with every non-member
    at ~1.19e-7, AUROC = 1/2 x 1/2 = 0.25."""
    logits = np.zeros((80, 10))
    logits[:, 0] = [15.0] * 20 + [60.0] * 20 + [80.0] * 40
    member = np.arange(80) < 40
    labels = np.zeros(80, int)
    f64 = create_attack("entropy").fit(logits, labels, member)
    assert auroc(f64.score(logits, labels), member) == 0.0
    f32 = create_attack("entropy", score_precision="float32").fit(logits, labels, member)
    s = f32.score(logits, labels)
    assert np.array_equal(s, -_paper_entropy(logits))
    assert np.unique(s[20:]).size == 1 and auroc(s, member) == 0.25


def _salem_probe(output: str, k: int = 2):
    """A float32 Salem whose attack model is set by hand: one hidden unit,
    ``logit = 1e9 * (1 - top1)``, which magnifies the top score's distance from 1."""
    logits = _gaps()
    attack = create_attack("salem", score_precision="float32", salem_score=output)
    attack.hidden, attack.max_epochs, attack.top_k = 1, 1, k
    attack.fit(logits, np.zeros(400, int), np.arange(400) % 2 == 0)
    w1, b1, w2, b2 = unpack(attack.params_, k, 1)
    w1[:] = 0.0
    w1[0, 0], b1[0], w2[0, 0], b2[0] = -1e9, 1e9, 1.0, 0.0
    return attack, logits


def test_float32_salem_sees_the_paper_top_k() -> None:
    attack, logits = _salem_probe("logit")
    top = torch.topk(_paper_softmax(logits), 2, dim=1).values.numpy().astype(np.float64)
    expected = (1e9 * (1.0 - top[:, 0])).astype(np.float32).astype(np.float64)
    s = attack.score(logits, np.zeros(400, int))
    assert np.array_equal(s, expected)
    assert (s == 0.0).sum() == 236  # saturated rows: the attack model sees exactly [1, 0]


def test_float32_salem_sigmoid_is_torch_sigmoid() -> None:
    attack, logits = _salem_probe("sigmoid")
    w1, b1, w2, b2 = unpack(attack.params_, 2, 1)
    w2[0, 0], b2[0] = 0.0, 16.7  # every logit 16.7: e^-16.7 < 2^-24, so 1 + e^-16.7 == 1
    s = attack.score(logits, np.zeros(400, int))
    assert torch.sigmoid(torch.tensor(16.7, dtype=torch.float32)).item() == 1.0
    assert (s == 1.0).all()  # float64's expit(16.7) rounded to float32 is 1 - 2^-24


def test_audit_float32_max_scores_and_mmps_are_the_paper_ones() -> None:
    logits = _gaps(10)
    labels = np.zeros(400, int)
    member = logits[:, 0] + np.random.default_rng(2).normal(0.0, 1.0, 400) > 17.5
    paper = _paper_softmax(logits).max(dim=1).values.numpy().astype(np.float64)
    result = audit(
        (logits, labels, member),
        (logits, labels, member),
        attacks=["threshold"],
        score_precision="float32",
    )
    scored = result.scores["threshold"]["original"]
    assert np.array_equal(scored.max_score, paper)
    cells = {"tp": (True, True), "fp": (True, False), "fn": (False, True), "tn": (False, False)}
    for cell, (predicted, is_member) in cells.items():
        mask = (scored.predicted == predicted) & (member == is_member)
        assert mask.any()
        expected = paper[mask].mean()  # float64 mean of the float32 max scores
        assert result.value("threshold", "original", f"mmps_{cell}") == expected


def test_float32_entropy_thresholds_compare_in_float32(monkeypatch) -> None:
    """Entropies 2^-24, 1 (members), 1.5, 2 (non-members); 3 thresholds. The middle one,
    (2^-24 + 2) / 2 = 1 + 2^-25, separates all four in float64; the paper compared in
    float32, where it is 1.0 and the member at 1.0 is not below it."""
    h = np.array([2.0**-24, 1.0, 1.5, 2.0])
    member = np.array([True, True, False, False])
    monkeypatch.setattr(  # the entropies every attack reads of a set
        "mistrust.attacks.set_signals.SetSignals.get", lambda self, name, precision="float64": h
    )
    thetas = np.linspace(h.min(), h.max(), 3)
    assert thetas[1] == 1.0 + 2.0**-25 and np.float32(thetas[1]) == 1.0
    # the paper's loop, its comparisons in float32 as NumPy 1 made them
    h32, best, best_correct = h.astype(np.float32), None, 0
    for theta in thetas:
        t = np.float32(theta)
        correct = (h32[~member] >= t).sum() + (h32[member] < t).sum()
        if correct > best_correct:
            best, best_correct = theta, correct
    assert best == thetas[1] and best_correct == 3
    logits = np.zeros((4, 2))
    f32 = create_attack("entropy", score_precision="float32")
    f32.n_thresholds = 3
    f32.fit(logits, np.zeros(4, int), member)
    assert f32.threshold_ == np.float32(best) and f32.shadow_accuracy_ == 0.75
    assert f32.predict(logits, np.zeros(4, int)).tolist() == [True, False, False, False]
    f64 = create_attack("entropy")
    f64.n_thresholds = 3
    f64.fit(logits, np.zeros(4, int), member)
    assert f64.threshold_ == 1.0 + 2.0**-25 and f64.shadow_accuracy_ == 1.0
