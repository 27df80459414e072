"""Conformance of every registered score-based attack (``attacks.registry``).

Each name of ``attack_names()`` at collection time, a built-in or one registered since, goes
through the same contract: higher score = member on a separable toy case, the same bytes for
the same seed, ``(N,)`` float64 scores and bool decisions, one clear error on bad input,
and a tiny audit through the array-only core. Unit-sized arrays: the module takes about a
second.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mistrust.attacks import NotFittedError, attack_names, create_attack
from mistrust.errors import InputError

NAMES = attack_names()


def _outputs(seed: int, n: int = 200, c: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Toy logits ``(n, c)``: members (first half) are far more confident in their label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    member = np.arange(n) < n // 2
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), labels] += np.where(member, 6.0, 0.5)
    return logits, labels, member


SHADOW, TARGET = _outputs(0), _outputs(1)


def _fitted(name: str, seed: int = 3):
    return create_attack(name, seed=seed).fit(*SHADOW)


def test_the_registry_is_not_empty() -> None:
    assert {"threshold", "entropy", "salem", "loss"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_higher_score_means_member(name: str) -> None:
    logits, labels, member = TARGET
    score = _fitted(name).score(logits, labels)
    assert roc_auc_score(member, score) > 0.9


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes(name: str) -> None:
    logits, labels, _ = TARGET
    first = _fitted(name).score(logits, labels)
    again = _fitted(name).score(logits, labels)
    assert first.tobytes() == again.tobytes()


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_types(name: str) -> None:
    logits, labels, _ = TARGET
    attack = _fitted(name)
    score = attack.score(logits[:7], labels[:7])
    assert score.shape == (7,) and score.dtype == np.float64 and np.isfinite(score).all()
    decided = attack.decide(score)
    assert decided.shape == (7,) and decided.dtype == bool
    np.testing.assert_array_equal(attack.predict(logits[:7], labels[:7]), decided)
    assert attack.name == name and np.isfinite(attack.operating_score_)


def _one_line(err: pytest.ExceptionInfo) -> None:
    assert str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_one_clear_error(name: str) -> None:
    logits, labels, member = SHADOW
    with pytest.raises(NotFittedError) as err:
        create_attack(name).predict(logits, labels)
    _one_line(err)
    nan = logits.copy()
    nan[0, 0] = np.nan
    bad = [
        (nan, labels, member),  # not finite
        (logits[:, :1], np.zeros(len(labels), int), member),  # one class
        (logits, labels[:-1], member),  # labels of another length
        (logits, labels + 4, member),  # a label outside the classes
        (logits, labels, np.ones_like(member)),  # members only
    ]
    for case in bad:
        with pytest.raises(InputError) as err:
            create_attack(name).fit(*case)
        _one_line(err)
    attack = _fitted(name)
    with pytest.raises(InputError) as err:  # fitted on 4 classes
        attack.score(logits[:, :3], np.zeros(len(labels), int))
    _one_line(err)


@pytest.mark.parametrize("name", NAMES)
def test_tiny_audit(name: str) -> None:
    """Through the array-only audit: every metric row of the attack, on the target's own
    non-members and on a set of far less confident non-members."""
    from mistrust.core.audit import audit
    from mistrust.metrics import METRIC_KEYS

    logits, labels, _ = TARGET
    ood = np.random.default_rng(5).normal(size=(40, 4))
    result = audit(SHADOW, TARGET, eval_sets={"flat": ood}, attacks=[name], seed=3)
    for ds in ("original", "flat"):
        assert all(np.isfinite(result.value(name, ds, key)) for key in ("auroc", "tpr", "fpr"))
        assert {k for _, a, d, k, _ in result.rows if (a, d) == (name, ds)} >= set(METRIC_KEYS)
    scores = result.scores[name]["original"]
    np.testing.assert_array_equal(scores.score, _fitted(name).score(logits, labels))
    assert result.value(name, "original", "auroc") > 0.9
