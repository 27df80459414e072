"""The reference attacks at scale: rows scored in blocks, the leave-one-out computed once
per model, both with the bits of the one-pass computation.

A row's score depends on that row and the statistics fitted on the reference population
alone, so scoring rows in blocks must give the same bits as scoring them at once, with the
array functions of ``attacks/lira.py`` and ``attacks/rmia.py`` (tested against scipy and by
hand in ``test_lira.py`` / ``test_rmia.py``) as the one pass. NumPy sums a row of a
row-major array pairwise and one of a column-major array value after value, so the cases
include masks in both layouts (the stage hands over the population's transposed keep
matrix) and 64 models (sums long enough for the pairwise order to matter).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from mistrust.attacks import REFERENCE_ATTACKS, LiRA, create_reference_attack
from mistrust.attacks.reference import blocks
from mistrust.attacks.reference.base import ReferenceAttack
from mistrust.attacks.reference.lira import lira_offline, lira_online, row_blocks
from mistrust.attacks.reference.rmia import rmia_prior, rmia_ratio, rmia_scores

NO_Z = np.empty(0, np.int64)


def _case(seed: int, n: int, m: int, q: int, p_in: float = 0.5) -> tuple:
    """Signals ``(n, m, q)`` (IN values higher), their IN mask and the target's ``(n, q)``;
    a few rows without IN models and a few without OUT models."""
    rng = np.random.default_rng(seed)
    in_mask = rng.random((n, m)) < p_in
    in_mask[:3], in_mask[3:6] = False, True
    ref = rng.normal(size=(n, m, q)) + 1.5 * in_mask[..., None]
    return ref, in_mask, rng.normal(size=(n, q)) + 0.7


def _prob(phi: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-phi))


def _fitted(name: str, seed: int, m: int, q: int) -> tuple[ReferenceAttack, np.ndarray]:
    attack = create_reference_attack(name)
    ref, in_mask, _ = _case(seed, 60, m, q)
    z = np.arange(40, 60)
    if attack.family == "rmia":
        ref = _prob(ref[..., 0])
    return attack.fit(ref, in_mask, z=z), _prob(np.linspace(-2, 2, 20))


def _one_pass(attack: ReferenceAttack, t, ref, in_mask, t_z) -> np.ndarray:
    """The attack's score of every row at once, from the array functions."""
    p = attack.pooled_
    if attack.name == "lira-online":
        return lira_online(t, ref, in_mask, pooled=p)
    if attack.name == "lira-offline":
        return lira_offline(t, ref, ~in_mask, pooled=p)
    if attack.online:
        prior_x, prior_z = rmia_prior(ref), rmia_prior(p.ref_z)
    else:
        prior_x = rmia_prior(ref, ~in_mask, a=attack.rmia_a, fallback=p.out_mean)
        prior_z = rmia_prior(p.ref_z, ~p.in_z, a=attack.rmia_a, fallback=p.out_mean)
    return rmia_scores(rmia_ratio(t, prior_x), rmia_ratio(t_z, prior_z), gamma=attack.rmia_gamma)


@pytest.mark.parametrize(
    ("name", "q"), [(n, q) for n in REFERENCE_ATTACKS for q in (1, 2) if q == 1 or "lira" in n]
)
@pytest.mark.parametrize("layout", ["C", "F"])
def test_scores_in_row_blocks_are_the_bits_of_one_pass(monkeypatch, name, q, layout) -> None:
    m = 64
    attack, t_z = _fitted(name, seed=q, m=m, q=q)
    ref, in_mask, t = _case(10 + q, 301, m, q)
    in_mask = np.asarray(in_mask, order=layout)
    if attack.family == "rmia":  # one query
        ref, t = _prob(ref[..., 0]), _prob(t[:, 0])
    expected = _one_pass(attack, t, ref, in_mask, t_z)
    monkeypatch.setattr(blocks, "BLOCK_VALUES", 7 * m * q)  # blocks of 7 rows, a tail of 8
    assert len(row_blocks(len(t), m * q)) == 43
    blocked = attack.score(t, ref, in_mask, target_z=t_z)
    assert blocked.tobytes() == expected.tobytes()


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("fixed_variance", [False, True])
@pytest.mark.parametrize(
    ("m", "q", "p_in"), [(2, 1, 0.5), (5, 2, 0.8), (64, 2, 0.5), (64, 1, 0.97)]
)
def test_lira_leave_one_out_is_the_bits_of_the_generic_one(
    monkeypatch, online, fixed_variance, m, q, p_in
) -> None:
    """LiRA's own leave-one-out (moments once per model, in blocks) against the base class's
    (the other models' pool, then their scores); ``p_in = 0.97`` leaves rows whose only OUT
    model is the one left out (offline: the mean of all OUT values)."""
    ref, in_mask, _ = _case(m + q, 90, m, q, p_in)
    rows = np.setdiff1d(np.arange(90), [7, 30])
    attack = LiRA(online=online, fixed_variance=fixed_variance)
    monkeypatch.setattr(blocks, "BLOCK_VALUES", 5 * m)
    lone_out = np.flatnonzero((~in_mask[rows]).sum(1) == 1)
    ks = {0, m - 1} | {int(np.argmin(in_mask[rows[i]])) for i in lone_out[:1]}
    assert len(lone_out) > 0 or p_in < 0.9
    for k in sorted(ks):
        generic = ReferenceAttack._leave_one_out(attack, ref, in_mask, rows, NO_Z, k)
        own = attack._leave_one_out(ref, in_mask, rows, NO_Z, k)
        assert own.tobytes() == generic.tobytes(), k


def test_row_blocks_cover_the_rows_without_a_one_row_block(monkeypatch) -> None:
    monkeypatch.setattr(blocks, "BLOCK_VALUES", 30)
    assert row_blocks(7, 10) == [(0, 3), (3, 7)]  # (6, 7) would be a single row
    assert row_blocks(6, 10) == [(0, 3), (3, 6)]
    assert row_blocks(1, 10) == [(0, 1)]
    assert row_blocks(0, 10) == []
    assert row_blocks(5, 100) == [(0, 2), (2, 5)]  # at least two rows per block


@pytest.mark.parametrize("name", REFERENCE_ATTACKS)
def test_score_memory_is_bounded_by_the_blocks(name) -> None:
    """Scoring 20,000 rows x 64 models x 2 queries (20 MiB of signals) allocates a few
    blocks, not temporaries the size of the input."""
    attack, t_z = _fitted(name, seed=0, m=64, q=2)
    ref, in_mask, t = _case(1, 20_000, 64, 2)
    if attack.family == "rmia":
        ref, t = _prob(np.repeat(ref[..., 0], 2, axis=0)), _prob(np.repeat(t[:, 0], 2))
        in_mask = np.repeat(in_mask, 2, axis=0)
    tracemalloc.start()
    try:
        attack.score(t, ref, in_mask, target_z=t_z)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < ref.nbytes / 2, (peak, ref.nbytes)


def test_score_checks_the_target_against_the_reference_rows() -> None:
    attack, t_z = _fitted("lira-online", seed=0, m=4, q=1)
    ref, in_mask, t = _case(1, 10, 4, 1)
    with pytest.raises(
        ValueError, match=r"one row per row of ref_signal \(10\), got shape \(9, 1\)"
    ):
        attack.score(t[:9], ref, in_mask)
