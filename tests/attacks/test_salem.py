from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from mistrust.attacks import SalemAttack, create_attack, signals
from mistrust.attacks._mlp import train_mlp
from mistrust.attacks.salem import FIT_ROWS, stratified_sample


def test_seeded_and_deterministic(shadow, target) -> None:
    a = SalemAttack(seed=1).fit(*shadow)
    b = SalemAttack(seed=1).fit(*shadow)
    c = SalemAttack(seed=2).fit(*shadow)
    np.testing.assert_array_equal(a.params_, b.params_)
    np.testing.assert_array_equal(a.score(*target[:2]), b.score(*target[:2]))
    assert not np.array_equal(a.params_, c.params_)
    assert a.n_epochs_ == len(a.loss_history_) >= 16  # patience 15 needs at least 16 epochs


def test_score_is_the_logit_and_decision_is_sigmoid_half(shadow, target) -> None:
    attack = create_attack("salem", top_k=2, seed=0).fit(*shadow)
    assert attack.top_k == 2 and attack.seed == 0 and attack.operating_score_ == 0.0
    score = attack.score(*target[:2])
    np.testing.assert_array_equal(attack.predict(*target[:2]), expit(score) >= 0.5)


def test_top_k_larger_than_classes(shadow) -> None:
    with pytest.raises(ValueError, match="k must be"):
        SalemAttack(top_k=9).fit(*shadow)
    with pytest.raises(ValueError, match="max_epochs must be >= 1"):
        SalemAttack(max_epochs=0).fit(*shadow)


def test_fit_is_fast(make_outputs) -> None:
    logits, labels, is_member = make_outputs(n=5_000, n_classes=10, seed=3)
    t0 = time.perf_counter()
    attack = SalemAttack().fit(logits, labels, is_member)
    elapsed = time.perf_counter() - t0
    # ~0.5 s on an idle 2-core machine (the paper's PyTorch loop: ~26 s); generous bound for CI
    assert elapsed < 10.0, f"salem fit took {elapsed:.1f} s ({attack.n_epochs_} epochs)"


def test_shadow_sets_up_to_salem_rows_train_on_every_row_as_the_paper(shadow) -> None:
    """At or below ``salem_rows`` the fit is the paper's on every row (the default
    preset's 1,000 shadow rows, the paper presets' 5,000): same weights, no sample."""
    n = len(shadow[0])
    every = SalemAttack(seed=3, salem_rows=None).fit(*shadow)
    at_limit = SalemAttack(seed=3, salem_rows=n).fit(*shadow)
    assert every.n_fit_rows_ == at_limit.n_fit_rows_ == n
    np.testing.assert_array_equal(at_limit.params_, every.params_)
    np.testing.assert_array_equal(SalemAttack(seed=3).fit(*shadow).params_, every.params_)
    below = SalemAttack(seed=3, salem_rows=n - 1).fit(*shadow)
    assert below.n_fit_rows_ == n - 1
    assert not np.array_equal(below.params_, every.params_)


def test_larger_shadow_sets_train_on_a_seeded_sample_of_the_same_rows(make_outputs) -> None:
    """Above ``salem_rows`` the fit is the paper's loop on ``salem_rows`` rows drawn by the
    seed, keeping the members' share: the same as fitting on those rows directly."""
    logits, labels, is_member = make_outputs(n=3_000, n_classes=10, seed=4)
    is_member = np.arange(3_000) < 1_000  # a third members
    a = SalemAttack(seed=5, salem_rows=300).fit(logits, labels, is_member)
    b = SalemAttack(seed=5, salem_rows=300).fit(logits, labels, is_member)
    np.testing.assert_array_equal(a.params_, b.params_)
    assert not np.array_equal(
        a.params_, SalemAttack(seed=6, salem_rows=300).fit(logits, labels, is_member).params_
    )
    # the rows the generator picks first, then the paper's loop on them with the same generator
    rng = np.random.default_rng(5)
    members = np.sort(rng.permutation(1_000)[:100])  # 300 x 1/3
    nonmembers = np.sort(1_000 + rng.permutation(2_000)[:200])
    rows = np.concatenate([members, nonmembers])
    features = signals.top_k_scores(logits[rows], 3)
    params, _ = train_mlp(
        features,
        is_member[rows].astype(float),
        hidden=64,
        lr=0.01,
        batch_size=16,
        patience=15,
        min_delta=5e-4,
        max_epochs=500,
        rng=rng,
    )
    np.testing.assert_array_equal(a.params_, params)


def test_stratified_sample_keeps_each_side() -> None:
    rng = np.random.default_rng(0)
    is_member = np.arange(100) < 99  # one non-member
    rows = stratified_sample(is_member, 10, rng)
    assert len(rows) == 10 and np.all(np.diff(rows) > 0)
    assert (~is_member[rows]).sum() == 1  # 10 x 1/100 rounds to 0, yet the side stays
    only_members = stratified_sample(np.ones(50, bool), 7, rng)
    assert len(np.unique(only_members)) == 7


def test_sampled_fit_is_as_strong_on_a_separable_case(make_outputs) -> None:
    """Members' true-class logits 6 above the non-members': the sampled fit separates
    a fresh target as the fit on every row does."""
    shadow = make_outputs(n=4_000, n_classes=10, seed=7, gap=6.0)
    logits, labels, is_member = make_outputs(n=2_000, n_classes=10, seed=8, gap=6.0)
    sampled = SalemAttack(salem_rows=400).fit(*shadow)
    full = SalemAttack(salem_rows=None).fit(*shadow)
    auc = {a: roc_auc_score(is_member, a.score(logits, labels)) for a in (sampled, full)}
    assert auc[sampled] > 0.99 and abs(auc[sampled] - auc[full]) < 0.005
    assert np.mean(sampled.predict(logits, labels) == is_member) > 0.95


def test_fit_cost_does_not_grow_with_the_shadow_set(make_outputs) -> None:
    logits, labels, is_member = make_outputs(n=200_000, n_classes=10, seed=9)
    t0 = time.perf_counter()
    attack = SalemAttack(salem_rows=500).fit(logits, labels, is_member)
    elapsed = time.perf_counter() - t0
    # every row at batch 16 would take ~15 s here; 500 rows take ~0.1 s
    assert attack.n_fit_rows_ == 500 and elapsed < 3.0, f"{elapsed:.1f} s"


def test_salem_rows_option_reaches_the_attack(shadow) -> None:
    assert create_attack("salem").salem_rows == FIT_ROWS
    assert create_attack("salem", salem_rows=None).salem_rows is None
    with pytest.raises(ValueError, match="salem_rows must be >= 2 or None"):
        SalemAttack(salem_rows=1).fit(*shadow)
