"""One conformance suite run over every score-based attack, plus per-attack rules."""

from __future__ import annotations

import numpy as np
import pytest

from mistrust.attacks import (
    SCORE_BASED_ATTACKS,
    Attack,
    NotFittedError,
    attack_names,
    create_attack,
    signals,
)
from mistrust.metrics import auroc

ATTACKS = [name for name in attack_names() if name in SCORE_BASED_ATTACKS]


def learned_state(attack: Attack) -> dict[str, object]:
    return {k: np.copy(v) for k, v in vars(attack).items() if k.endswith("_")}


def assert_same_state(a: dict[str, object], b: dict[str, object]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_every_builtin_is_registered() -> None:
    assert set(SCORE_BASED_ATTACKS) <= set(attack_names())
    assert ATTACKS == list(SCORE_BASED_ATTACKS)


@pytest.mark.parametrize("name", ATTACKS)
class TestConformance:
    def test_sign_convention_higher_score_means_member(self, name, shadow, target) -> None:
        attack = create_attack(name).fit(*shadow)
        logits, labels, is_member = target
        score = attack.score(logits, labels)
        assert score.shape == (len(labels),) and score.dtype == np.float64
        assert auroc(score, is_member) > 0.75
        pred = attack.predict(logits, labels)
        assert pred.dtype == bool and pred.shape == (len(labels),)
        assert (pred == is_member).mean() > 0.65

    def test_predict_is_decide_of_score(self, name, shadow, target) -> None:
        attack = create_attack(name).fit(*shadow)
        logits, labels, _ = target
        np.testing.assert_array_equal(
            attack.predict(logits, labels), attack.decide(attack.score(logits, labels))
        )
        assert isinstance(attack.operating_score_, float)

    def test_fit_uses_shadow_data_only(self, name, shadow, target, make_outputs) -> None:
        attack = create_attack(name).fit(*shadow)
        state = learned_state(attack)
        first = attack.score(*target[:2])
        other_logits, other_labels, _ = make_outputs(n=300, seed=5, gap=0.0)
        attack.score(other_logits, other_labels)
        attack.predict(other_logits, np.roll(other_labels, 1))
        assert_same_state(state, learned_state(attack))
        np.testing.assert_array_equal(attack.score(*target[:2]), first)
        refit = create_attack(name).fit(*shadow)  # same shadow data -> same attack
        assert_same_state(state, learned_state(refit))
        np.testing.assert_array_equal(refit.score(*target[:2]), first)

    def test_fit_does_not_modify_inputs(self, name, shadow) -> None:
        copies = [np.copy(a) for a in shadow]
        create_attack(name).fit(*shadow)
        for a, b in zip(shadow, copies, strict=True):
            np.testing.assert_array_equal(a, b)

    def test_float32_and_probability_inputs(self, name, shadow, target) -> None:
        attack = create_attack(name).fit(shadow[0].astype(np.float32), *shadow[1:])
        logits, labels, _ = target
        via_probs = signals.probs_to_logits(signals.softmax(logits))
        np.testing.assert_allclose(
            attack.score(via_probs, labels), attack.score(logits, labels), rtol=1e-7, atol=1e-7
        )

    def test_not_fitted(self, name, target) -> None:
        attack = create_attack(name)
        assert attack.name == name
        for call in (lambda: attack.score(*target[:2]), lambda: attack.predict(*target[:2])):
            with pytest.raises(NotFittedError, match="not fitted"):
                call()
        with pytest.raises(ValueError):
            attack.decide(np.zeros(3))
        assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
        assert name in repr(attack) or type(attack).__name__ in repr(attack)

    def test_bad_inputs(self, name, shadow) -> None:
        logits, labels, is_member = shadow
        attack = create_attack(name)
        nan = logits.copy()
        nan[3, 1] = np.nan
        cases = [
            ((nan, labels, is_member), "NaN or Inf"),
            ((logits[:, 0], labels, is_member), "2-D"),
            (
                (logits, labels[:-1], is_member),
                f"{len(labels)} rows but labels have {len(labels) - 1}",
            ),
            (
                (logits, labels, is_member[:-2]),
                f"{len(labels)} rows but is_member has {len(labels) - 2}",
            ),
            ((logits, labels, np.ones_like(is_member)), "0 non-members"),
            ((logits, labels, np.zeros_like(is_member)), "0 members"),
        ]
        for args, match in cases:
            with pytest.raises(ValueError, match=match):
                attack.fit(*args)
        attack.fit(logits, labels, is_member.astype(int))  # 0/1 membership is fine
        with pytest.raises(ValueError, match="fitted on 5 classes"):
            attack.score(logits[:, :4], np.zeros(len(logits), int))
        with pytest.raises(ValueError, match="NaN or Inf"):
            attack.score(nan, labels)
