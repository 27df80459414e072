"""The paper's decision rule and score numerics, as options (known values by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from mistrust.attacks import create_attack
from mistrust.attacks.signals import at_precision, max_score
from mistrust.metrics import auroc


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
        attack = create_attack("threshold", strict=strict, precision=precision)
        attack.fit(logits, labels, member)
        assert attack.predict(logits, labels).tolist() == expected, (precision, strict)
    attack = create_attack("threshold", precision="float32").fit(logits, labels, member)
    assert attack.threshold_ == 1.0


def test_float32_ties_change_auroc() -> None:
    """Members at gaps 30 and 25 vs a non-member at 20: resolved in float64, tied in float32."""
    logits = np.zeros((3, 3))
    logits[:, 0] = [30.0, 25.0, 20.0]
    member = np.array([True, True, False])
    scores = create_attack("threshold").fit(logits, np.zeros(3, int), member)
    assert auroc(scores.score(logits, np.zeros(3, int)), member) == 1.0
    f32 = create_attack("threshold", precision="float32").fit(logits, np.zeros(3, int), member)
    s = f32.score(logits, np.zeros(3, int))
    assert s.tolist() == [1.0, 1.0, 1.0] and auroc(s, member) == 0.5  # all tied: one half


def test_salem_sigmoid_scores_and_same_decisions(shadow, target) -> None:
    logit = create_attack("salem", seed=1).fit(*shadow)
    sigmoid = create_attack("salem", seed=1, output="sigmoid").fit(*shadow)
    logits, labels, _ = target
    s_logit, s_sig = logit.score(logits, labels), sigmoid.score(logits, labels)
    assert np.allclose(s_sig, 1.0 / (1.0 + np.exp(-s_logit)))
    assert sigmoid.operating_score_ == 0.5 and logit.operating_score_ == 0.0
    assert np.array_equal(logit.decide(s_logit), sigmoid.decide(s_sig))
    f32 = create_attack("salem", seed=1, output="sigmoid", precision="float32").fit(*shadow)
    s32 = f32.score(logits, labels)
    assert np.array_equal(s32, s32.astype(np.float32).astype(np.float64))


def test_entropy_float32_rounds_entropies(shadow) -> None:
    attack = create_attack("entropy", precision="float32").fit(*shadow)
    s = attack.score(shadow[0], shadow[1])
    assert np.array_equal(s, s.astype(np.float32).astype(np.float64))
    assert np.allclose(s, create_attack("entropy").fit(*shadow).score(shadow[0], shadow[1]))
