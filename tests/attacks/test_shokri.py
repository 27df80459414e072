from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

import mistrust
from mistrust.attacks import (
    OPT_IN_ATTACKS,
    SCORE_BASED_ATTACKS,
    ShokriAttack,
    ShokriLogAttack,
    attack_names,
    create_attack,
)
from mistrust.attacks._mlp import mlp_logits, train_mlp
from mistrust.attacks.shokri import LOG_FLOOR, shokri_features
from mistrust.config import AttackConfig, load_config


def _flipped_classes(n_per_side: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two classes of 3, each with the same two confidence levels (top softmax score 0.95 or
    0.6): class 0's members are the confident rows, class 1's the unconfident ones. The
    sorted vectors alone cannot tell members (each level is half members); the vector
    with the class can, exactly."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, member_top in ((0, 0.95), (1, 0.6)):
        for member in (True, False):
            top = member_top if member else 1.55 - member_top  # the other level
            p = np.full((n_per_side, 3), (1.0 - top) / 2)
            p[:, label] = top
            p += rng.uniform(-0.01, 0.01, size=p.shape)  # distinct rows, same levels
            p /= p.sum(1, keepdims=True)
            rows.append((np.log(p), np.full(n_per_side, label), np.full(n_per_side, member)))
    logits, labels, is_member = (np.concatenate(c) for c in zip(*rows, strict=True))
    return logits, labels, is_member.astype(bool)


def test_per_class_models_separate_what_one_model_on_the_sorted_vector_cannot() -> None:
    shadow, target = _flipped_classes(60, seed=0), _flipped_classes(40, seed=1)
    per_class = ShokriAttack(min_class_rows=20).fit(*shadow)
    assert per_class.class_models_ == [0, 1]
    score = per_class.score(*target[:2])
    assert roc_auc_score(target[2], score) == 1.0
    np.testing.assert_array_equal(per_class.predict(*target[:2]), target[2])
    shared = ShokriAttack(per_class=False).fit(*shadow)  # ML-Leaks' label-free variant
    assert shared.class_models_ == []
    assert abs(roc_auc_score(target[2], shared.score(*target[:2])) - 0.5) < 0.1


def test_score_direction_and_fixed_operating_point(shadow, target) -> None:
    """Toy outputs whose members are more confident: higher score = member, decision at
    the sigmoid's 0.5 (logit 0), as Salem's."""
    for attack in (ShokriAttack(max_epochs=100), ShokriLogAttack(max_epochs=100)):
        attack.fit(*shadow)
        score = attack.score(*target[:2])
        assert attack.operating_score_ == 0.0
        assert roc_auc_score(target[2], score) > 0.8
        np.testing.assert_array_equal(attack.predict(*target[:2]), score >= 0.0)


def test_seeded_and_deterministic(shadow, target) -> None:
    a, b, c = (
        ShokriAttack(seed=s, min_class_rows=5, max_epochs=30).fit(*shadow) for s in (1, 1, 2)
    )
    assert a.class_models_ == list(range(5))
    np.testing.assert_array_equal(a.score(*target[:2]), b.score(*target[:2]))
    assert not np.array_equal(a.score(*target[:2]), c.score(*target[:2]))


def test_shared_model_is_the_mlp_on_standardised_features(shadow, target) -> None:
    """The same solver on the same inputs gives the same model: the features computed
    here with scipy (sorted log-softmax, the label's logit-confidence), standardised by
    scikit-learn, trained by _mlp with the attack's generator."""
    attack = ShokriLogAttack(seed=4, max_epochs=40).fit(*shadow)
    logits, labels, is_member = shadow

    def features(logits, labels):
        lp = log_softmax(logits, axis=1)
        lp_y = lp[np.arange(len(lp)), labels]
        conf = lp_y - np.log1p(-np.exp(lp_y))
        return np.column_stack([np.maximum(-np.sort(-lp, 1), LOG_FLOOR), conf])

    scaler = StandardScaler().fit(features(logits, labels))
    params, _ = train_mlp(
        scaler.transform(features(logits, labels)),
        is_member.astype(float),
        hidden=64,
        lr=0.001,
        batch_size=16,
        patience=15,
        min_delta=5e-4,
        max_epochs=40,
        rng=np.random.default_rng(4),
    )
    np.testing.assert_allclose(attack.models_[-1][2], params, rtol=1e-9, atol=1e-12)
    expected = mlp_logits(params, scaler.transform(features(*target[:2])), hidden=64)
    np.testing.assert_allclose(attack.score(*target[:2]), expected, rtol=1e-9, atol=1e-9)


def test_as_strong_as_logistic_regression_on_the_same_features(make_outputs) -> None:
    """scikit-learn's logistic regression on the same features is a fair yardstick here:
    the toy members differ by a shift of the true-class logit, so a linear rule suffices.
    The shared model is compared: with ~100 rows a class, per-class models fit noise."""
    shadow = make_outputs(n=1_000, n_classes=5, seed=2, gap=1.0)
    target = make_outputs(n=1_000, n_classes=5, seed=3, gap=1.0)
    for features in ("probs", "log-probs"):
        attack = ShokriAttack(features=features, per_class=False, lr=0.001, max_epochs=100)
        attack.fit(*shadow)
        ours = roc_auc_score(target[2], attack.score(*target[:2]))
        lr = LogisticRegression(max_iter=1_000).fit(
            shokri_features(*shadow[:2], features), shadow[2]
        )
        theirs = roc_auc_score(
            target[2], lr.decision_function(shokri_features(*target[:2], features))
        )
        assert ours > theirs - 0.03, (features, ours, theirs)


def test_classes_with_few_shadow_rows_use_the_shared_model(make_outputs) -> None:
    logits, labels, is_member = make_outputs(n=600, n_classes=3, seed=5)
    keep = (labels != 2) | (np.arange(600) % 10 == 0)  # class 2: a tenth of its rows
    shadow = (logits[keep], labels[keep], is_member[keep])
    attack = ShokriAttack(min_class_rows=20).fit(*shadow)
    assert attack.class_models_ == [0, 1] and set(attack.models_) == {-1, 0, 1}
    x = shokri_features(logits, np.full(600, 2), "probs")
    mean, scale, params = attack.models_[-1]
    np.testing.assert_allclose(
        attack.score(logits, np.full(600, 2)), mlp_logits(params, (x - mean) / scale, hidden=64)
    )


def test_unlabelled_sets_are_scored_with_the_predicted_class(shadow, make_outputs) -> None:
    """A label < 0 (an OOD set) reaches the attack as the predicted class
    (core.audit.labels_or_predicted): the class model of that class scores it."""
    target = make_outputs(n=40, seed=1)
    ood = make_outputs(n=20, n_classes=5, seed=6)[0]
    result = mistrust.audit(shadow, target, eval_sets={"ood": ood}, attacks=["shokri"])
    attack = ShokriAttack().fit(*shadow)
    assert attack.class_models_  # the toy shadow has a model per class
    n_members = int(target[2].sum())
    np.testing.assert_allclose(
        result.scores["shokri"]["ood"].score[n_members:], attack.score(ood, ood.argmax(1))
    )


def test_registered_but_not_in_the_default_list() -> None:
    assert set(OPT_IN_ATTACKS) <= set(attack_names())
    assert not set(OPT_IN_ATTACKS) & set(SCORE_BASED_ATTACKS)
    assert not set(OPT_IN_ATTACKS) & set(AttackConfig().names)
    for preset in ("default", "smoke", "paper-cifar10-salemcnn"):
        assert not set(OPT_IN_ATTACKS) & set(load_config(preset).attacks.names)
    for name in OPT_IN_ATTACKS:
        attack = create_attack(name, seed=3)
        assert attack.name == name and attack.seed == 3


def test_bad_options_are_refused(shadow) -> None:
    with pytest.raises(ValueError, match="features must be one of"):
        ShokriAttack(features="logits").fit(*shadow)
    with pytest.raises(ValueError, match="min_class_rows must be >= 1"):
        ShokriAttack(min_class_rows=0).fit(*shadow)
    with pytest.raises(ValueError, match="max_rows must be >= 2 or None"):
        ShokriAttack(max_rows=1).fit(*shadow)
