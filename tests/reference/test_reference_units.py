"""The reference attacks without training: the population, the LiRA / RMIA objects and the
reference stage on synthetic outputs (seconds; the mutation job's tests for these modules).

Expectations are written out here: the keep matrix's counts, the leave-one-out operating
point from the array functions of ``attacks/lira.py`` and ``attacks/rmia.py`` (checked
against scipy and by hand in ``test_lira.py`` / ``test_rmia.py``), and the stage's scores
from logits written to the run directory by a stand-in for the training task.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from mistrust.attacks import RMIA, LiRA, NotFittedError, create_reference_attack
from mistrust.attacks.reference import ReferenceAttack, offline_counterpart
from mistrust.attacks.reference.lira import lira_offline, lira_online, pool
from mistrust.attacks.reference.rmia import rmia_scores_dense
from mistrust.config import load_config
from mistrust.core.outputs import Outputs
from mistrust.data.bundle import Data
from mistrust.data.evalsets import EvalInputs
from mistrust.data.images import ImageSet, Preprocess
from mistrust.data.population import Population, make_population, population_images
from mistrust.errors import ConfigError
from mistrust.io import load_npz
from mistrust.metrics import METRIC_KEYS, attack_metrics
from mistrust.runtime.paths import RunPaths

SPLITS = {
    "target_members": np.array([3, 5, 9]),
    "target_nonmembers": np.array([0, 4]),
    "shadow_train": np.array([10, 11, 12, 13, 14, 15]),
}
#: make_population(SPLITS, n_models=4, population_size=5, z_size=3, seed=7), as drawn when
#: the draw was last changed (training rows per model, then z)
PINNED_KEEP = [[0, 1, 5, 7, 8], [2, 3, 4, 5, 8], [2, 3, 4, 5, 10], [0, 1, 5, 6, 7]]
PINNED_Z = [6, 7, 10]


# --- signals written out ----------------------------------------------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _prob(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _softmax(logits)[np.arange(len(labels)), labels]


def _phi(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``log p_y - log(1 - p_y)`` as ``z_y - logsumexp(z_other)``."""
    z = np.asarray(logits, np.float64)
    rows = np.arange(len(labels))
    others = z.copy()
    others[rows, labels] = -np.inf
    return z[rows, labels] - logsumexp(others, axis=1)


# --- population -------------------------------------------------------------------------


def test_population_layout_and_counts() -> None:
    pop = make_population(SPLITS, n_models=4, population_size=5, z_size=4, seed=3)
    np.testing.assert_array_equal(pop.source, [0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(pop.index, [3, 5, 9, 0, 4, 10, 11, 12, 13, 14, 15])
    assert pop.source.dtype == np.int64 and pop.index.dtype == np.int64
    assert (pop.n_members, pop.n_audited) == (3, 5)
    assert pop.keep.shape == (4, 11) and pop.keep.dtype == bool
    # 5 audited rows: the first pair splits them 2 / 3, the second 3 / 2
    assert pop.keep[:, :5].sum(1).tolist() == [2, 3, 3, 2]
    assert (pop.keep[0, :5] ^ pop.keep[1, :5]).all() and (pop.keep[2, :5] ^ pop.keep[3, :5]).all()
    assert (pop.keep.sum(1) == 5).all()  # filled up to population_size from the pool
    np.testing.assert_array_equal(pop.in_mask, pop.keep.T)
    assert pop.z.dtype == np.int64 and len(pop.z) == 4 and len(set(pop.z.tolist())) == 4
    assert (pop.z >= 5).all() and (pop.z < 11).all() and (np.diff(pop.z) > 0).all()


def test_population_even_audited_and_odd_models() -> None:
    splits = {**SPLITS, "target_nonmembers": np.array([0, 4, 6])}  # 6 audited rows
    pop = make_population(splits, n_models=3, population_size=6, z_size=2, seed=0)
    assert pop.keep[:, :6].sum(1).tolist() == [3, 3, 3]
    assert (pop.keep[0, :6] ^ pop.keep[1, :6]).all()
    assert pop.keep[:, 6:].sum(1).tolist() == [3, 3, 3]


def test_population_is_seeded_and_stable_when_models_are_added() -> None:
    a = make_population(SPLITS, n_models=4, population_size=5, z_size=3, seed=1)
    b = make_population(SPLITS, n_models=4, population_size=5, z_size=3, seed=1)
    np.testing.assert_array_equal(a.keep, b.keep)
    np.testing.assert_array_equal(a.z, b.z)
    more = make_population(SPLITS, n_models=6, population_size=5, z_size=3, seed=1)
    np.testing.assert_array_equal(more.keep[:4], a.keep)
    np.testing.assert_array_equal(more.z, a.z)
    others = [
        make_population(SPLITS, n_models=4, population_size=5, z_size=3, seed=s) for s in (2, 3)
    ]
    assert any(not np.array_equal(o.keep, a.keep) for o in others)
    assert any(not np.array_equal(o.z, a.z) for o in others)


def test_population_draw_is_pinned() -> None:
    """Cached reference models are reused by the digest of their training rows: the same
    seed must keep drawing the same keep matrix and z across versions."""
    pop = make_population(SPLITS, n_models=4, population_size=5, z_size=3, seed=7)
    assert [np.flatnonzero(k).tolist() for k in pop.keep] == PINNED_KEEP
    assert pop.z.tolist() == PINNED_Z


def test_pairs_alternate_the_odd_sample_and_models_fill_exactly() -> None:
    pop = make_population(SPLITS, n_models=6, population_size=3, z_size=2, seed=0)
    assert pop.keep[:, :5].sum(1).tolist() == [2, 3, 3, 2, 2, 3]
    assert (pop.keep.sum(1) == 3).all(), "a model with 3 audited rows draws nothing more"
    even = {**SPLITS, "target_nonmembers": np.array([0, 4, 6])}  # 6 audited rows
    make_population(even, n_models=2, population_size=3, z_size=1, seed=0)  # 6 / 2 allowed
    with pytest.raises(ConfigError, match=r"between half the audited samples \(3\)"):
        make_population(even, n_models=2, population_size=2, z_size=1, seed=0)


def test_population_size_bounds_are_exact() -> None:
    make_population(SPLITS, n_models=2, population_size=3, z_size=1, seed=0)  # ceil(5 / 2)
    make_population(SPLITS, n_models=2, population_size=8, z_size=1, seed=0)  # 5 // 2 + 6
    msg = (
        r"reference.population_size \((2|9)\) must lie between half the audited samples "
        r"\(3\) and that plus the shadow pool \(8\)"
    )
    for size in (2, 9):
        with pytest.raises(ConfigError, match=msg):
            make_population(SPLITS, n_models=2, population_size=size, z_size=1, seed=0)


def test_z_is_capped_at_the_pool_with_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="mistrust.data.population"):
        pop = make_population(SPLITS, n_models=2, population_size=4, z_size=7, seed=0)
    np.testing.assert_array_equal(pop.z, np.arange(5, 11))
    assert [r.getMessage() for r in caplog.records] == [
        "reference.z_size (7) exceeds the shadow pool (6); using 6"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mistrust.data.population"):
        assert len(make_population(SPLITS, n_models=2, population_size=4, z_size=6, seed=0).z) == 6
    assert not caplog.text


def test_digest_names_the_training_rows_by_pool_and_index() -> None:
    keep = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1]], bool)
    pop = Population(np.array([0, 1, 0]), np.array([7, 7, 8]), 1, 2, keep, np.array([2]))
    d = [pop.digest(m) for m in range(3)]
    assert d[0] == d[1] and d[0] != d[2]
    assert len(d[0]) == 10 and all(c in "0123456789abcdef" for c in d[0])
    other_pool = Population(np.array([0, 0, 0]), np.array([7, 7, 8]), 1, 2, keep, np.array([2]))
    assert other_pool.digest(0) != d[0]  # same index, other pool: other images


def test_digest_does_not_depend_on_the_integer_dtype() -> None:
    keep = np.array([[1, 0, 1]], bool)
    wide = Population(np.array([0, 1, 0]), np.array([7, 7, 8]), 1, 2, keep, np.array([1]))
    narrow = Population(
        np.array([0, 1, 0], np.int32), np.array([7, 7, 8], np.int32), 1, 2, keep, np.array([1])
    )
    assert narrow.digest(0) == wide.digest(0)
    # pinned: cached reference models are found by this digest; a new one retrains them all
    assert wide.digest(0) == "f808edb2c7"


def test_population_save_round_trip(tmp_path) -> None:
    pop = make_population(SPLITS, n_models=2, population_size=4, z_size=2, seed=0)
    pop.save(tmp_path / "keep.npz")
    got = load_npz(tmp_path / "keep.npz")
    assert set(got) == {"source", "index", "keep", "z", "n_members", "n_audited"}
    for key in ("source", "index", "keep", "z"):
        np.testing.assert_array_equal(got[key], getattr(pop, key))
    assert int(got["n_members"]) == 3 and int(got["n_audited"]) == 5


def test_population_images_come_from_the_right_pool() -> None:
    train = ImageSet(torch.arange(16, dtype=torch.uint8).view(16, 1, 1, 1), torch.arange(16) % 3)
    test = ImageSet(
        (100 + torch.arange(8, dtype=torch.uint8)).view(8, 1, 1, 1), torch.arange(8) % 2
    )
    data = Data(train, test, None, Preprocess(1, 1, (0.5,), (0.5,)), 3, SPLITS)
    pop = make_population(SPLITS, n_models=2, population_size=4, z_size=2, seed=0)
    images, labels = population_images(data, pop)
    assert images.dtype == torch.uint8 and images.shape == (11, 1, 1, 1)
    assert images.view(-1).tolist() == [3, 5, 9, 100, 104, 10, 11, 12, 13, 14, 15]
    assert labels.tolist() == [0, 2, 0, 0, 0, 1, 2, 0, 1, 2, 0]


# --- the attack objects -----------------------------------------------------------------


def _signals(n: int = 12, m: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Population signals: IN models see higher values; a complementary keep pattern."""
    rng = np.random.default_rng(seed)
    in_mask = np.zeros((n, m), bool)
    for p in range(n):
        in_mask[p, rng.permutation(m)[: m // 2]] = True
    in_mask[0] = True  # IN for every model: never a calibration row
    in_mask[1] = False  # OUT for every model: never a calibration row
    phi = rng.normal(size=(n, m)) + 1.5 * in_mask
    prob = 1 / (1 + np.exp(-phi))
    return phi, prob, in_mask


def _loo_threshold(score_fn, ref: np.ndarray, in_mask: np.ndarray, rows: np.ndarray) -> float:
    """Leave-one-out pooled scores and the smallest threshold with maximal TPR - FPR."""
    scores, members = [], []
    for k in range(in_mask.shape[1]):
        others = [j for j in range(in_mask.shape[1]) if j != k]
        scores.append(score_fn(k, others))
        members.append(in_mask[rows, k])
    s, y = np.concatenate(scores), np.concatenate(members)
    best, best_t = -np.inf, np.inf
    for t in np.sort(np.unique(s))[::-1]:
        gap = (s[y] >= t).mean() - (s[~y] >= t).mean()
        if gap > best + 1e-12:
            best, best_t = gap, t
    return float(best_t)


@pytest.mark.parametrize("online", [False, True])
def test_lira_fit_is_the_leave_one_out_threshold(online: bool) -> None:
    phi, _, in_mask = _signals()
    z = np.array([10, 11])
    rows = np.arange(2, 10)  # not all-IN (0), not all-OUT (1), not z

    def score(k, others):
        t, ref, m = phi[rows, k], phi[rows][:, others], in_mask[rows][:, others]
        pooled = pool(phi[:, others], in_mask[:, others])  # the others' whole population
        if online:
            return lira_online(t, ref, m, pooled=pooled)
        return lira_offline(t, ref, ~m, pooled=pooled)

    attack = LiRA(online=online).fit(phi, in_mask, z=z)
    assert attack.operating_score_ == pytest.approx(_loo_threshold(score, phi, in_mask, rows))
    assert attack.n_models_ == 4 and isinstance(attack.operating_score_, float)


@pytest.mark.parametrize("online", [False, True])
def test_rmia_fit_is_the_leave_one_out_threshold(online: bool) -> None:
    _, prob, in_mask = _signals()
    z = np.array([10, 11])
    rows = np.arange(2, 10)
    a, gamma = 0.4, 1.2

    def prior(values: np.ndarray, mask: np.ndarray, others: list[int]) -> np.ndarray:
        if online:
            return values.mean(1)
        # a row without OUT models: the mean OUT value of the others' whole population
        fallback = prob[:, others][~in_mask[:, others]].mean()
        out = np.array(
            [v[~m].mean() if (~m).any() else fallback for v, m in zip(values, mask, strict=True)]
        )
        return ((1 + a) * out + (1 - a)) / 2

    def score(k, others):
        ref_x, m_x = prob[rows][:, others], in_mask[rows][:, others]
        ref_z, m_z = prob[z][:, others], in_mask[z][:, others]
        rx = prob[rows, k] / prior(ref_x, m_x, others)
        rz = prob[z, k] / prior(ref_z, m_z, others)
        return rmia_scores_dense(rx, rz, gamma=gamma)

    attack = RMIA(online=online, rmia_a=a, rmia_gamma=gamma).fit(prob, in_mask, z=z)
    assert attack.operating_score_ == pytest.approx(_loo_threshold(score, prob, in_mask, rows))
    np.testing.assert_array_equal(attack.ref_z_, prob[z])
    np.testing.assert_array_equal(attack.in_z_, in_mask[z])


def test_fit_scores_only_rows_with_in_and_out_models_outside_z(monkeypatch) -> None:
    import mistrust.attacks.reference.lira as rb

    phi, _, in_mask = _signals()
    seen = []
    real = rb.leave_one_out

    def spy(ref, mask, rows, k, **kw):
        score = real(ref, mask, rows, k, **kw)
        seen.append((np.array(rows), k, kw, score))
        return score

    monkeypatch.setattr(rb, "leave_one_out", spy)
    LiRA(online=False, fixed_variance=True).fit(phi, in_mask, z=np.array([11, 10]))
    assert [k for _, k, _, _ in seen] == [0, 1, 2, 3]
    rows = np.arange(2, 10)
    for rows_k, k, kw, score in seen:
        others = [j for j in range(4) if j != k]
        np.testing.assert_array_equal(rows_k, rows)
        assert kw == {"online": False, "fixed_variance": True}
        # pooled over every population row (z and the all-IN / all-OUT rows included)
        pooled = pool(phi[:, others], in_mask[:, others])
        expected = lira_offline(
            phi[rows, k],
            phi[rows][:, others],
            ~in_mask[rows][:, others],
            fixed_variance=True,
            pooled=pooled,
        )
        np.testing.assert_array_equal(score, expected)


def test_score_and_decide() -> None:
    phi, prob, in_mask = _signals()
    z = np.array([10, 11])
    rng = np.random.default_rng(5)
    t = rng.normal(size=6)
    ref, m = rng.normal(size=(6, 4)), in_mask[2:8]
    lira = LiRA(online=False, fixed_variance=True).fit(phi, in_mask, z=z)
    score = lira.score(t, ref, m)
    assert score.dtype == np.float64 and score.shape == (6,)
    pooled = pool(phi, in_mask)  # estimated at fit, on the population
    np.testing.assert_array_equal(
        score, lira_offline(t, ref, ~m, fixed_variance=True, pooled=pooled)
    )
    np.testing.assert_array_equal(
        LiRA(online=True).fit(phi, in_mask).score(t, ref, m), lira_online(t, ref, m, pooled=pooled)
    )
    np.testing.assert_array_equal(lira.decide(score), score >= lira.operating_score_)
    at = np.array([lira.operating_score_, np.nextafter(lira.operating_score_, -np.inf)])
    assert lira.decide(at).tolist() == [True, False]  # member iff score >= operating point
    # RMIA: the fitted z statistics, the target's z signal
    rmia = RMIA(online=True, rmia_gamma=1.0).fit(prob, in_mask, z=z)
    t_p, ref_p, t_z = rng.uniform(0.1, 0.9, 6), rng.uniform(0.1, 0.9, (6, 4)), np.array([0.3, 0.6])
    want = rmia_scores_dense(t_p / ref_p.mean(1), t_z / prob[z].mean(1))
    np.testing.assert_array_equal(rmia.score(t_p, ref_p, m, target_z=t_z), want)


def test_fixed_variance_reaches_both_lira_modes_and_empty_z_is_no_z() -> None:
    phi, _, in_mask = _signals()
    rng = np.random.default_rng(6)
    t, ref, m = rng.normal(size=6), rng.normal(size=(6, 4)), in_mask[2:8]
    pooled = pool(phi, in_mask)
    for online, fn, mask in ((True, lira_online, m), (False, lira_offline, ~m)):
        attack = LiRA(online=online, fixed_variance=True).fit(phi, in_mask, z=[])
        want = fn(t, ref, mask, fixed_variance=True, pooled=pooled)
        np.testing.assert_array_equal(attack.score(t, ref, m), want)
        assert not np.array_equal(want, fn(t, ref, mask, pooled=pooled))  # the option matters
        assert (
            attack.operating_score_
            == LiRA(online=online, fixed_variance=True).fit(phi, in_mask).operating_score_
        )


def test_signals_written_out() -> None:
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = np.array([0, 1])
    np.testing.assert_allclose(LiRA.signal(logits, labels), _phi(logits, labels), rtol=1e-12)
    np.testing.assert_allclose(RMIA.signal(logits, labels), _prob(logits, labels), rtol=1e-12)


def test_names_factory_and_parameters() -> None:
    for name in ("lira-online", "lira-offline", "rmia-online", "rmia-offline"):
        attack = create_reference_attack(name)
        assert attack.name == name and attack.online is name.endswith("-online")
        assert attack.needs_z is name.startswith("rmia")
    lira = create_reference_attack("lira-offline", fixed_variance=True, rmia_a=0.1)
    assert isinstance(lira, LiRA) and lira.fixed_variance is True
    rmia = create_reference_attack("rmia-online", rmia_a=0.1, rmia_gamma=2.0)
    assert isinstance(rmia, RMIA) and (rmia.rmia_a, rmia.rmia_gamma) == (0.1, 2.0)
    assert (
        LiRA(online=True).fixed_variance,
        RMIA(online=True).rmia_a,
        RMIA(online=True).rmia_gamma,
    ) == (
        False,
        0.3,
        1.0,
    )
    assert repr(rmia) == "RMIA(online=True, rmia_a=0.1, rmia_gamma=2.0)"
    _, prob, in_mask = _signals()
    rmia.fit(prob, in_mask, z=np.array([10, 11]))  # learned attributes stay out of the repr
    assert repr(rmia) == "RMIA(online=True, rmia_a=0.1, rmia_gamma=2.0)"
    default = create_reference_attack("lira-online")
    assert default.fixed_variance is False
    default = create_reference_attack("rmia-offline")
    assert (default.rmia_a, default.rmia_gamma) == (0.3, 1.0)
    for bad in ("lira", "rmia-both", "loss-online", "online"):
        msg = (
            f"unknown reference attack '{bad}'; choose from lira-online, lira-offline, "
            "rmia-online, rmia-offline$"
        )
        with pytest.raises(ValueError, match=msg):
            create_reference_attack(bad)
    assert offline_counterpart("lira-online") == "lira-offline"
    assert offline_counterpart("rmia-offline") == "rmia-offline"


def test_misuse_raises() -> None:
    phi, prob, in_mask = _signals()
    with pytest.raises(
        NotFittedError,
        match=r"call fit\(ref_signal, in_mask, z=...\) on the "
        "reference population first$",
    ):
        LiRA(online=False).score(phi[:, 0], phi, in_mask)
    with pytest.raises(NotFittedError, match=r"RMIA \('rmia-online'\) is not fitted"):
        RMIA(online=True).decide(np.zeros(2))
    with pytest.raises(ValueError, match="in_mask must be boolean of shape"):
        LiRA(online=False).fit(phi, in_mask.astype(int))
    with pytest.raises(
        ValueError, match=r"in_mask must be boolean of shape \(12, 4\) \(N, M\), got bool \(5, 4\)"
    ):
        LiRA(online=False).fit(phi[..., None], in_mask[:5])  # one query per example
    with pytest.raises(ValueError, match="at least 2 reference models, got 1"):
        LiRA(online=False).fit(phi[:, :1], in_mask[:, :1])
    LiRA(online=False).fit(phi[:, :2], in_mask[:, :2])  # two are enough
    with pytest.raises(ValueError, match="rmia-offline needs the population samples z"):
        RMIA(online=False).fit(prob, in_mask)
    with pytest.raises(ValueError, match="rmia-offline needs OUT reference values: every"):
        RMIA(online=False).fit(prob, np.ones_like(in_mask), z=np.array([10, 11]))
    rmia = RMIA(online=False).fit(prob, in_mask, z=np.array([10, 11]))
    with pytest.raises(ValueError, match="needs the target's signal on z"):
        rmia.score(prob[:, 0], prob, in_mask)
    with pytest.raises(ValueError, match="fitted on 4 reference models, scored with 3"):
        rmia.score(prob[:, 0], prob[:, :3], in_mask[:, :3], target_z=np.ones(2))


# --- the stage on synthetic outputs ---------------------------------------------------------

REFERENCE = ["lira-online", "lira-offline", "rmia-online", "rmia-offline"]
C = 3  # classes


def _data() -> Data:
    g = torch.Generator().manual_seed(0)
    train = ImageSet(
        torch.randint(0, 256, (24, 1, 4, 4), generator=g, dtype=torch.uint8), torch.arange(24) % C
    )
    test = ImageSet(
        torch.randint(0, 256, (12, 1, 4, 4), generator=g, dtype=torch.uint8),
        (torch.arange(12) + 1) % C,
    )
    splits = {
        "target_train": np.arange(0, 8),
        "target_members": np.array([1, 2, 5, 6]),
        "target_test": np.arange(0, 6),
        "target_nonmembers": np.array([0, 3, 4]),
        "shadow_train": np.arange(8, 24),
    }
    return Data(train, test, None, Preprocess(1, 4, (0.5,), (0.25,)), C, splits)


def _logits(key: str, n: int) -> np.ndarray:
    seed = sum(ord(ch) * (i + 1) for i, ch in enumerate(key))
    return np.random.default_rng(seed).normal(size=(n, C)).astype(np.float32) * 2


def _trained(logits: np.ndarray, keep: np.ndarray, labels: torch.Tensor) -> np.ndarray:
    """A stand-in model's logits: 3 more on the label of every row it trained on."""
    out = logits.copy()
    out[np.arange(len(out)), labels.numpy()] += 3.0 * keep
    return out


class _Fake:
    """Stand-ins for the training task and the target's extra outputs: seeded logits."""

    def __init__(self) -> None:
        self.flip: bool | None = None

    def train(self, job, pop, *, executor: str, address: str | None, progress: bool) -> None:
        self.flip, self.job, self.progress = job.flip, job, progress
        self.executor, self.address = executor, address
        root = job.paths.outputs_dir / "reference"
        n = len(job.images)
        for m in range(len(pop.keep)):
            for suffix in ("", "-flip") if job.flip else ("",):
                logits = _trained(_logits(f"{m}population{suffix}", n), pop.keep[m], job.labels)
                Outputs(logits, np.full(n, -1)).save(root / str(m) / f"population{suffix}.npz")
                for name, (x, _) in job.queries.items():
                    Outputs(_logits(f"{m}{name}{suffix}", len(x)), np.full(len(x), -1)).save(
                        root / str(m) / f"{name}{suffix}.npz"
                    )

    def extra(self, job, pop) -> dict[str, Outputs]:
        out = {"z": Outputs(_logits("tz", len(pop.z)), np.full(len(pop.z), -1))}
        if job.flip:
            a = pop.n_audited
            out["audited-flip"] = Outputs(_logits("taudited-flip", a), np.full(a, -1))
            for name, (x, _) in job.queries.items():
                n = len(x)
                out[f"{name}-flip"] = Outputs(_logits(f"t{name}-flip", n), np.full(n, -1))
        return out


def _stage(tmp_path, monkeypatch, *extra: str, progress: bool = False):
    import mistrust.study.reference as reference

    fake = _Fake()
    monkeypatch.setattr(reference, "train_reference_models", fake.train)
    monkeypatch.setattr(reference, "target_extra_outputs", fake.extra)
    cfg = load_config(
        "smoke",
        [
            "eval.sets=[original, scaled, noise]",
            f"reference.attacks=[{', '.join(REFERENCE)}]",
            "reference.n_models=4",
            "reference.z_size=5",
            "reference.population_size=6",
            "reference.rmia_a=0.4",
            "reference.rmia_gamma=1.1",
            "reference.fixed_variance=true",
            "attacks.aupr=trapezoid",
            *extra,
        ],
    )
    data = _data()
    nm_labels = data.test.labels[data.splits["target_nonmembers"]][[2, 0, 1]]  # copies' labels
    sets = {
        "scaled": EvalInputs(
            torch.zeros(3, 1, 4, 4),
            nm_labels,
            torch.zeros(3, 1, 4, 4, dtype=torch.uint8),
            source=torch.tensor([2, 0, 1]),
        ),
        "noise": EvalInputs(
            torch.zeros(5, 1, 4, 4),
            torch.full((5,), -1),
            torch.zeros(5, 1, 4, 4, dtype=torch.uint8),
        ),
    }
    run_dir, target_dir = tmp_path / "run", tmp_path / "run/outputs/base/target"
    sp = data.splits
    Outputs(_logits("ttrain", 8), data.train.labels[sp["target_train"]].numpy()).save(
        target_dir / "train.npz"
    )
    Outputs(_logits("ttest", 6), data.test.labels[sp["target_test"]].numpy()).save(
        target_dir / "test.npz"
    )
    Outputs(_logits("tscaled", 3), nm_labels.numpy()).save(target_dir / "scaled.npz")
    Outputs(_logits("tnoise", 5), np.full(5, -1)).save(target_dir / "noise.npz")
    from mistrust.study.reference import reference_attack_rows

    rows = reference_attack_rows(
        cfg, data, sets, RunPaths(run_dir), device="cpu", progress=progress
    )
    return cfg, data, run_dir, rows, fake


def _expected(cfg, data, flip: bool):
    """Every score of the stage, from the synthetic logits and the documented rules."""
    sp = data.splits
    pop = make_population(sp, n_models=4, population_size=6, z_size=5, seed=cfg.seed)
    in_mask = pop.keep.T
    y_pop = np.r_[
        data.train.labels[sp["target_members"]].numpy(),
        data.test.labels[sp["target_nonmembers"]].numpy(),
        data.train.labels[sp["shadow_train"]].numpy(),
    ]
    q = ["", "-flip"] if flip else [""]
    t_aud = np.r_[_logits("ttrain", 8)[[1, 2, 5, 6]], _logits("ttest", 6)[[0, 3, 4]]]
    t_logits = {"original": t_aud, "scaled": _logits("tscaled", 3), "noise": _logits("tnoise", 5)}
    y = {
        "original": y_pop[:7],
        "scaled": y_pop[4:7][[2, 0, 1]],  # copies of non-members 2, 0, 1
        "noise": _logits("tnoise", 5).argmax(1),
    }
    ref = {
        key: np.stack([np.stack([_logits(f"{m}{key}{s}", n) for s in q], -1) for m in range(4)], 1)
        for key, n in (("population", 23), ("scaled", 3), ("noise", 5))
    }  # (n, M, C, Q)
    rows = np.arange(23)
    for m in range(4):  # the stand-in models are confident on the rows they trained on
        ref["population"][rows, m, y_pop, :] += 3.0 * pop.keep[m][:, None]

    def phi(logits4, labels):  # (n, M, C, Q) -> (n, M, Q)
        return np.stack(
            [
                np.stack([_phi(logits4[:, m, :, j], labels) for j in range(len(q))], -1)
                for m in range(4)
            ],
            1,
        )

    def prob(logits4, labels):
        return np.stack([_prob(logits4[:, m, :, 0], labels) for m in range(4)], 1)

    def target_phi(name):
        cols = [_phi(t_logits[name], y[name])]
        if flip:
            key = "audited" if name == "original" else name
            flipped = _logits(f"t{key}-flip", len(y[name]))
            cols.append(_phi(flipped, y[name]))
        return np.stack(cols, 1)

    pop_phi, pop_prob = phi(ref["population"], y_pop), prob(ref["population"], y_pop)
    t_z = _prob(_logits("tz", 5), y_pop[pop.z])
    a, gamma, fv = cfg.reference.rmia_a, cfg.reference.rmia_gamma, cfg.reference.fixed_variance
    # statistics pooled over examples come from the whole population, for every set
    pooled = pool(pop_phi, in_mask)
    out_mean = pop_prob[~in_mask].mean()

    def rmia_prior(values, mask, online):
        if online:
            return values.mean(1)
        out = np.array(
            [v[~m].mean() if (~m).any() else out_mean for v, m in zip(values, mask, strict=True)]
        )
        return ((1 + a) * out + (1 - a)) / 2

    want = {}
    for name in REFERENCE:
        for ds in ("original", "scaled", "noise"):
            online = name.endswith("online") and ds != "noise"
            if ds == "original":
                t_phi, r_phi, r_prob, m_x = target_phi(ds), pop_phi[:7], pop_prob[:7], in_mask[:7]
                t_p = _prob(t_aud, y_pop[:7])
            else:
                t_phi = np.r_[target_phi("original")[:4], target_phi(ds)]
                r_phi = np.r_[pop_phi[:4], phi(ref[ds], y[ds])]
                r_prob = np.r_[pop_prob[:4], prob(ref[ds], y[ds])]
                ood_in = (
                    in_mask[4 + np.array([2, 0, 1])] if ds == "scaled" else np.zeros((5, 4), bool)
                )
                m_x = np.r_[in_mask[:4], ood_in]
                t_p = np.r_[_prob(t_aud, y_pop[:7])[:4], _prob(t_logits[ds], y[ds])]
            if name.startswith("lira"):
                fn = lira_online if online else lira_offline
                m_fn = m_x if online else ~m_x
                want[(name, ds)] = fn(t_phi, r_phi, m_fn, fixed_variance=fv, pooled=pooled)
            else:
                rx = t_p / rmia_prior(r_prob, m_x, online)
                rz = t_z / rmia_prior(pop_prob[pop.z], in_mask[pop.z], online)
                want[(name, ds)] = rmia_scores_dense(rx, rz, gamma=gamma)
    return want, pop_phi, pop_prob, in_mask, pop.z


@pytest.mark.parametrize("flip", [False, True])
def test_stage_scores_rows_and_files(tmp_path, monkeypatch, flip: bool) -> None:
    cfg, data, run_dir, rows, fake = _stage(
        tmp_path, monkeypatch, f"reference.augment_queries={str(flip).lower()}"
    )
    assert fake.flip is flip
    want, pop_phi, pop_prob, in_mask, z = _expected(cfg, data, flip)
    val = {(a, d, m): v for _, a, d, m, v in rows}
    assert {r[0] for r in rows} == {"base"}
    thresholds = {}
    for name in REFERENCE:
        fv = cfg.reference.fixed_variance
        family = (
            LiRA(online=name.endswith("online"), fixed_variance=fv)
            if name.startswith("lira")
            else RMIA(online=name.endswith("online"), rmia_a=0.4, rmia_gamma=1.1)
        )
        signal = pop_phi if name.startswith("lira") else pop_prob
        thresholds[name] = family.fit(signal, in_mask, z=z).operating_score_
    for name in REFERENCE:
        assert val[(name, "shadow", "operating_score")] == pytest.approx(thresholds[name])
        for ds in ("original", "scaled", "noise"):
            f = load_npz(run_dir / "scores" / "base" / name / f"{ds}.npz")
            assert set(f) == {"score", "is_member", "predicted", "max_score"}
            np.testing.assert_allclose(f["score"], want[(name, ds)], rtol=1e-9, atol=1e-12)
            n = 7 if ds == "original" else {"scaled": 7, "noise": 9}[ds]
            np.testing.assert_array_equal(f["is_member"], np.arange(n) < 4)
            assert f["is_member"].dtype == bool and f["predicted"].dtype == bool
            run_as = (
                name if name.endswith("offline") or ds != "noise" else offline_counterpart(name)
            )
            np.testing.assert_array_equal(f["predicted"], f["score"] >= thresholds[run_as])
            assert val[(name, ds, "tpr")] == f["predicted"][:4].mean()
            assert val[(name, ds, "fpr")] == f["predicted"][4:].mean()
            assert all((name, ds, k) in val for k in METRIC_KEYS)
            want_aupr = attack_metrics(
                f["score"],
                f["is_member"],
                f["predicted"],
                max_score=f["max_score"],
                aupr="trapezoid",
            )["aupr"]
            assert val[(name, ds, "aupr")] == want_aupr  # the config's AUPR rule
            if name.endswith("online"):
                assert val[(name, ds, "offline_on_ood")] == (1.0 if ds == "noise" else 0.0)
            else:
                assert (name, ds, "offline_on_ood") not in val
        logits = {
            "original": np.r_[_logits("ttrain", 8)[[1, 2, 5, 6]], _logits("ttest", 6)[[0, 3, 4]]]
        }
        f = load_npz(run_dir / "scores" / "base" / name / "noise.npz")
        np.testing.assert_allclose(
            f["max_score"],
            _softmax(np.r_[logits["original"][:4], _logits("tnoise", 5)]).max(1),
            rtol=1e-6,
        )
    keep = load_npz(run_dir / "reference_keep.npz")
    np.testing.assert_array_equal(keep["keep"].T, in_mask)
    assert len(rows) == 4 * 3 * len(METRIC_KEYS) + 2 * 3 + 4


def test_stage_without_original_has_no_online_operating_point(tmp_path, monkeypatch) -> None:
    _, _, _, rows, _ = _stage(tmp_path, monkeypatch, "eval.sets=[noise]")
    got = {(a, d, m) for _, a, d, m, _ in rows}
    assert ("lira-online", "shadow", "operating_score") not in got
    assert ("lira-offline", "shadow", "operating_score") in got
    assert ("rmia-online", "noise", "offline_on_ood") in got


def test_stage_defaults_to_no_flips_without_flipping_training(tmp_path, monkeypatch) -> None:
    _, _, _, _, fake = _stage(tmp_path, monkeypatch)
    assert fake.flip is False
    _, _, _, _, fake = _stage(tmp_path / "b", monkeypatch, "data.augment=flip-crop")
    assert fake.flip is True


def test_stage_checks_its_inputs(tmp_path, monkeypatch) -> None:
    import mistrust.study.reference as reference

    data = _data()
    cfg = load_config("smoke", ["reference.attacks=[]"])
    assert (
        reference.reference_attack_rows(
            cfg, data, {}, RunPaths(tmp_path), device="cpu", progress=False
        )
        == []
    )
    assert not (tmp_path / "reference_keep.npz").exists()
    cfg = load_config("smoke", ["eval.sets=[original, noise]", "reference.attacks=[lira-online]"])
    with pytest.raises(ValueError, match=r"evaluation sets \['noise'\] are in eval.sets but"):
        reference.reference_attack_rows(
            cfg, data, {}, RunPaths(tmp_path), device="cpu", progress=False
        )


@pytest.mark.parametrize(("executor", "epochs"), [("local", None), ("ray", 5)])
def test_stage_hands_the_training_task_its_inputs(tmp_path, monkeypatch, executor, epochs) -> None:
    extra = [f"executor={executor}", f"reference.epochs={epochs or 'null'}", "train.epochs=2"]
    cfg, data, _, _, fake = _stage(tmp_path, monkeypatch, *extra, progress=True)
    job = fake.job
    assert job.data is cfg.data and job.model is cfg.model and job.seed == cfg.seed
    assert (fake.executor, fake.address) == (executor, None)
    assert job.tcfg.epochs == (epochs or 2)
    assert job.tcfg.lr == cfg.train.lr  # the target's training config otherwise
    assert job.preprocess is data.preprocess and job.num_classes == C
    assert job.paths == RunPaths(tmp_path / "run") and job.device == "cpu"
    pop = make_population(data.splits, n_models=4, population_size=6, z_size=5, seed=cfg.seed)
    images, labels = population_images(data, pop)
    assert torch.equal(job.images, images) and torch.equal(job.labels, labels)
    assert sorted(job.queries) == ["noise", "scaled"]
    assert fake.progress is True  # bars of the whole job
    assert job.progress is (executor == "local")  # per-model bars only in this process


def test_fitted_attacks_take_the_configs_parameters() -> None:
    from mistrust.pipeline.reference import _fitted, _Signals

    cfg = load_config(
        "smoke",
        ["reference.rmia_a=0.4", "reference.rmia_gamma=1.1", "reference.fixed_variance=true"],
    )
    phi, prob, in_mask = _signals()
    pop = Population(np.zeros(12, np.int64), np.arange(12), 1, 2, in_mask.T, np.array([10, 11]))
    sig = _Signals({"lira": {"population": phi[..., None]}, "rmia": {"population": prob}}, {})
    lira = _fitted("lira-offline", cfg.reference, pop, sig)
    assert isinstance(lira, LiRA) and lira.fixed_variance is True and not lira.online
    want = LiRA(online=False, fixed_variance=True).fit(phi, in_mask, z=pop.z).operating_score_
    assert lira.operating_score_ == want
    rmia = _fitted("rmia-online", cfg.reference, pop, sig)
    assert isinstance(rmia, RMIA) and (rmia.rmia_a, rmia.rmia_gamma, rmia.online) == (
        0.4,
        1.1,
        True,
    )
    want = (
        RMIA(online=True, rmia_a=0.4, rmia_gamma=1.1).fit(prob, in_mask, z=pop.z).operating_score_
    )
    assert rmia.operating_score_ == want


# --- a family registered elsewhere runs through the stage like the built-in ones ----------


def _label_logit(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.asarray(logits, np.float64)[np.arange(len(labels)), labels]


class _Gap(ReferenceAttack):
    """A toy family: the target's logit of the label minus the mean of the reference models'
    (offline: of the OUT models, the population's mean OUT value where a row has none)."""

    family = "gap"

    def __init__(self, *, online: bool, fixed_variance: bool = False) -> None:
        super().__init__(online=online)
        self.fixed_variance = fixed_variance  # an option of the reference section, by name

    @staticmethod
    def signal(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return _label_logit(logits, labels)

    def _pool(self, ref: np.ndarray, in_mask: np.ndarray, z: np.ndarray) -> float:
        return float(ref[~in_mask].mean())

    def _score(self, t_x, ref_x, in_x, pooled, t_z) -> np.ndarray:
        if self.online:
            return t_x - ref_x.mean(1)
        out = ~in_x
        total = np.where(out, ref_x, 0.0).sum(1)
        return t_x - np.where(out.any(1), total / np.maximum(out.sum(1), 1), pooled)


@pytest.fixture
def gap_family(monkeypatch):
    from mistrust.attacks.reference import registry

    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))  # unregistered after
    registry.register_family(_Gap)
    return _Gap


def test_a_registered_family_runs_through_the_stage(tmp_path, monkeypatch, gap_family) -> None:
    """Registering the family is all it takes: the config accepts its two names, the stage
    reads the family's own signal (not LiRA's or RMIA's), fits and scores it on every set,
    the online attack on a set without IN models as its offline counterpart."""
    from mistrust.attacks import REFERENCE_ATTACKS

    assert REFERENCE_ATTACKS[-2:] == ("gap-online", "gap-offline")
    cfg, data, run_dir, rows, _ = _stage(
        tmp_path, monkeypatch, "reference.attacks=[gap-online, gap-offline, lira-offline]"
    )
    sp = data.splits
    pop = make_population(sp, n_models=4, population_size=6, z_size=5, seed=cfg.seed)
    in_mask = pop.keep.T
    y_pop = np.r_[
        data.train.labels[sp["target_members"]].numpy(),
        data.test.labels[sp["target_nonmembers"]].numpy(),
        data.train.labels[sp["shadow_train"]].numpy(),
    ]
    # the stand-in models' signal: their logit of the label, 3 more where they trained on it
    trained = [
        _trained(_logits(f"{m}population", 23), pop.keep[m], torch.tensor(y_pop)) for m in range(4)
    ]
    ref_pop = np.stack([_label_logit(logits, y_pop) for logits in trained], 1)
    t_aud = _label_logit(
        np.r_[_logits("ttrain", 8)[[1, 2, 5, 6]], _logits("ttest", 6)[[0, 3, 4]]], y_pop[:7]
    )
    y_noise = _logits("tnoise", 5).argmax(1)  # no labels: the target's predicted class
    ref_noise = np.stack([_label_logit(_logits(f"{m}noise", 5), y_noise) for m in range(4)], 1)
    t_noise = _label_logit(_logits("tnoise", 5), y_noise)
    out_mean = ref_pop[~in_mask].mean()

    def offline(t, ref, out):
        n_out = out.sum(1)
        mean = np.where(out, ref, 0.0).sum(1) / np.maximum(n_out, 1)
        return t - np.where(n_out > 0, mean, out_mean)

    want = {
        ("gap-online", "original"): t_aud - ref_pop[:7].mean(1),
        ("gap-offline", "original"): offline(t_aud, ref_pop[:7], ~in_mask[:7]),
    }
    noise_out = np.r_[~in_mask[:4], np.ones((5, 4), bool)]  # no model trained on noise
    want[("gap-offline", "noise")] = offline(
        np.r_[t_aud[:4], t_noise], np.r_[ref_pop[:4], ref_noise], noise_out
    )
    want[("gap-online", "noise")] = want[("gap-offline", "noise")]
    for (name, ds), score in want.items():
        got = load_npz(run_dir / "scores" / "base" / name / f"{ds}.npz")["score"]
        np.testing.assert_allclose(got, score, rtol=1e-12, err_msg=f"{name} on {ds}")
    val = {(a, d, m): v for _, a, d, m, v in rows}
    assert val[("gap-online", "noise", "offline_on_ood")] == 1.0
    assert val[("gap-online", "scaled", "offline_on_ood")] == 0.0  # copies keep their IN models
    assert ("gap-offline", "shadow", "operating_score") in val
    assert {a for _, a, _, _, _ in rows} == {"gap-online", "gap-offline", "lira-offline"}
