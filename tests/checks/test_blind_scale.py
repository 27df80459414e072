"""The blind baseline at scale: the solver switch, its agreement with scikit-learn, and
the blocked pooling (:mod:`mistrust.checks.baseline`, :mod:`mistrust.checks.logreg_newton`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import mistrust.checks.baseline as baseline
from mistrust.checks.baseline import (
    BLIND_GRID,
    BLIND_NEWTON_ABOVE,
    blind_method,
    blind_scores,
    feature_dtype,
    pixel_features,
)
from mistrust.metrics import auroc


def _folds(m: np.ndarray, seed: int, folds: int = 5) -> np.ndarray:
    """The documented fold assignment, written out again."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(m), dtype=np.int64)
    for group in (np.flatnonzero(m), np.flatnonzero(~m)):
        fold[group[rng.permutation(len(group))]] = np.arange(len(group)) % min(folds, len(group))
    return fold


def _sklearn(f: np.ndarray, m: np.ndarray, seed: int, **lr: object) -> np.ndarray:
    """Each fold scored by scikit-learn's standardised, balanced logistic regression."""
    fold, out = _folds(m, seed), np.empty(len(f))
    for i in np.unique(fold):
        clf = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", **lr))
        clf.fit(f[fold != i], m[fold != i])
        out[fold == i] = clf.decision_function(f[fold == i])
    return out


def _data(n: int, d: int, n_in: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + 100.0  # correlated, off-centre
    m = np.arange(n) < n_in
    f[m, 0] += shift
    f[:, 1] = 7.0  # a constant feature: scikit-learn scales it by 1
    return f, m


def test_the_switch_is_at_the_documented_size_on_both_sides(monkeypatch) -> None:
    assert blind_method(BLIND_NEWTON_ABOVE) == "sklearn"
    assert blind_method(BLIND_NEWTON_ABOVE + 1) == "newton"
    used = []
    monkeypatch.setattr(baseline, "_sklearn_folds", lambda f, *a: used.append("sk") or f[:, 0])
    monkeypatch.setattr(baseline, "fit_folds", lambda f, *a: used.append("newton") or f[:, 0])
    m = np.arange(BLIND_NEWTON_ABOVE + 1) % 2 == 0
    f = np.zeros((len(m), 2))
    blind_scores(f[:-1], m[:-1], seed=0)
    blind_scores(f, m, seed=0)
    assert used == ["sk", "newton"]


def test_below_the_switch_the_scores_keep_their_bytes() -> None:
    # the default preset's sets are a few thousand samples: scikit-learn, as before
    f, m = _data(300, 6, 120, 0.5, seed=1)
    want = _sklearn(f, m, seed=4, max_iter=2000)
    assert blind_scores(f, m, seed=4).tobytes() == want.tobytes()


@pytest.mark.parametrize(
    ("n", "n_in", "shift"),
    [(600, 300, 0.0), (600, 200, 1.5), (400, 3, 0.0)],  # chance, a shift, 3 members only
)
def test_newton_finds_scikit_learns_minimiser(n, n_in, shift) -> None:
    f, m = _data(n, 8, n_in, shift, seed=n_in)
    want = _sklearn(f, m, seed=2, solver="newton-cholesky", tol=1e-12)  # to the minimum
    got = blind_scores(f, m, seed=2, newton_above=0)
    assert np.abs(got - want).max() < 1e-7 * (1.0 + np.abs(want).max())
    # scikit-learn's default tolerance is what the scores below the switch carry
    loose = _sklearn(f, m, seed=2, max_iter=2000)
    assert abs(auroc(got, m) - auroc(loose, m)) < 0.01


def test_newton_is_deterministic_separates_a_shift_and_stays_at_chance_on_iid() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=(6000, 16))
    m = np.arange(6000) < 3000
    s = blind_scores(f, m, seed=0, newton_above=0)
    assert s.tobytes() == blind_scores(f, m, seed=0, newton_above=0).tobytes()
    assert abs(auroc(s, m) - 0.5) < 0.04  # cross-fitted: AUROC's sd here is 0.0075
    # members shifted by 0.3 on 16 unit-variance features: the best linear score has
    # AUROC = Phi(0.3 * 4 / sqrt(2)) = Phi(0.849) = 0.802
    shifted = f + 0.3 * m[:, None]
    assert abs(auroc(blind_scores(shifted, m, seed=0, newton_above=0), m) - 0.802) < 0.02
    # higher = member, whichever way the shift goes
    assert abs(auroc(blind_scores(-shifted, m, seed=0, newton_above=0), m) - 0.802) < 0.02


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_pooling_in_blocks_keeps_every_bit(dtype) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2 * baseline._POOL_BLOCK + 3, 2, 28, 28), generator=g)
    x = x.to(torch.uint8) if dtype == torch.uint8 else (x.float() / 255 - 0.3) / 0.35
    want = F.adaptive_avg_pool2d(x.to(torch.float64), 8).reshape(len(x), -1).numpy()
    threads = torch.get_num_threads()
    assert pixel_features(x).tobytes() == want.tobytes()
    assert torch.get_num_threads() == threads  # the caller's setting is left as it was


def test_newton_from_spaced_rows_to_all_rows_finds_the_same_minimiser(monkeypatch) -> None:
    # above _HESSIAN_ROWS the steps on all rows use Hessians of the spaced rows only
    import mistrust.checks.logreg_newton as newton

    monkeypatch.setattr(newton, "_HESSIAN_ROWS", 250)
    f, m = _data(3000, 8, 1000, 0.3, seed=5)
    want = _sklearn(f, m, seed=1, solver="newton-cholesky", tol=1e-12)
    got = blind_scores(f, m, seed=1, newton_above=0)
    assert np.abs(got - want).max() < 1e-5 * (1.0 + np.abs(want).max())


def test_features_are_float32_above_the_switch_rounded_once_float64_up_to_it() -> None:
    g = torch.Generator().manual_seed(1)
    x = (torch.rand((BLIND_NEWTON_ABOVE + 1, 1, 12, 12), generator=g) - 0.3) / 0.35
    exact = F.adaptive_avg_pool2d(x.to(torch.float64), 8).reshape(len(x), -1).numpy()
    assert feature_dtype(BLIND_NEWTON_ABOVE) == np.float64
    assert feature_dtype(BLIND_NEWTON_ABOVE + 1) == np.float32
    # up to the switch: the float64 averages, every bit (scikit-learn's scores keep theirs)
    assert pixel_features(x[:-1]).tobytes() == exact[:-1].tobytes()
    # above: each float64 average rounded once to float32, not averaged in float32
    above = pixel_features(x)
    assert above.dtype == np.float32
    assert above.tobytes() == exact.astype(np.float32).tobytes()
    assert pixel_features(x, dtype=np.float64).tobytes() == exact.tobytes()


def test_uint8_images_pooled_by_four_by_four_lose_nothing_in_float32() -> None:
    # 28 x 28 -> 8 x 8 averages 16 pixels: k / 16 with k <= 4080 is exact in float32
    x = torch.randint(0, 256, (40, 1, 28, 28), generator=torch.Generator().manual_seed(2))
    x = x.to(torch.uint8)
    f64 = pixel_features(x, dtype=np.float64)
    assert np.array_equal(pixel_features(x, dtype=np.float32).astype(np.float64), f64)


def test_the_feature_stage_holds_four_bytes_per_pooled_value() -> None:
    import tracemalloc

    n = 20_000  # above the switch; the old float64 features alone took 10 MB here
    x = torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(3))
    x = x.to(torch.uint8)
    tracemalloc.start()
    try:
        f = pixel_features(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f.shape == (n, BLIND_GRID * BLIND_GRID)
    assert peak <= 4 * f.size + 256 * 1024, peak


@pytest.mark.parametrize(
    ("n", "n_in", "shift"),
    [(600, 300, 0.0), (600, 200, 1.5), (400, 3, 0.0)],  # the cases of the float64 test
)
def test_newton_on_float32_features_finds_the_same_minimiser(n, n_in, shift) -> None:
    f, m = _data(n, 8, n_in, shift, seed=n_in)
    f32 = f.astype(np.float32)
    got = blind_scores(f32, m, seed=2, newton_above=0)
    # the fit itself is as exact as on float64: the minimiser of the same (rounded) values
    want = _sklearn(f32.astype(np.float64), m, seed=2, solver="newton-cholesky", tol=1e-12)
    assert np.abs(got - want).max() < 1e-7 * (1.0 + np.abs(want).max())
    # against the unrounded features only the rounding moves the scores: measured at
    # 0.6-2.0e-6 here, where every feature is about 100 (float32 spacing there: 7.6e-6)
    want64 = _sklearn(f, m, seed=2, solver="newton-cholesky", tol=1e-12)
    assert np.abs(got - want64).max() < 1e-5 * (1.0 + np.abs(want64).max())


@pytest.mark.parametrize("n_in", [100, BLIND_NEWTON_ABOVE + 1])
def test_the_audit_gives_each_fit_the_dtype_of_its_own_size(monkeypatch, n_in) -> None:
    # a target above the switch with few members: the members' fit with a small set is
    # below it, so its rows keep their float64 bytes; with many members every fit is above
    import mistrust.core.audit as auditing

    seen = {}

    def record(f: np.ndarray, is_member: np.ndarray, *, seed: int) -> np.ndarray:
        seen[len(f)] = f
        return np.zeros(len(f))

    monkeypatch.setattr(auditing, "blind_scores", record)
    rng = np.random.default_rng(0)
    n_target, n_set = BLIND_NEWTON_ABOVE + 200, 50
    x_t, x_s = rng.normal(size=(n_target, 1, 8, 8)), rng.normal(size=(n_set, 1, 8, 8))
    t_member = np.arange(n_target) < n_in
    truth = {"original": t_member, "ood": np.arange(n_in + n_set) < n_in}
    auditing._baseline(None, {"target": x_t, "ood": x_s}, truth, t_member, "original", seed=0)
    small = n_in <= BLIND_NEWTON_ABOVE
    want = np.concatenate([x_t[:n_in], x_s])
    want = pixel_features(want, dtype=np.float64 if small else np.float32)
    assert seen[n_in + n_set].tobytes() == want.tobytes()
    assert seen[n_target].dtype == (np.float64 if small else np.float32)
