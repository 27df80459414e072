from __future__ import annotations

import numpy as np
import pytest

from mistrust.config import ConfigError, DataConfig
from mistrust.data.splits import make_splits, positions


def _labels(n: int, k: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, k, n)


def test_splits_disjoint_sized_and_reproducible() -> None:
    tr, te = _labels(3000), _labels(1000, seed=1)
    cfg = DataConfig(train_size=600, test_size=300, members=200, nonmembers=150)
    s = make_splits(tr, te, cfg, seed=42)
    assert len(np.intersect1d(s["target_train"], s["shadow_train"])) == 0
    assert len(np.intersect1d(s["target_test"], s["shadow_test"])) == 0
    for role in ("target", "shadow"):
        assert len(s[f"{role}_train"]) == 600 and len(s[f"{role}_test"]) == 300
        assert np.isin(s[f"{role}_members"], s[f"{role}_train"]).all()
        assert np.isin(s[f"{role}_nonmembers"], s[f"{role}_test"]).all()
        assert len(np.unique(s[f"{role}_members"])) == 200
        cal = s[f"{role}_calibration"]
        assert len(cal) == 150 and not np.isin(cal, s[f"{role}_nonmembers"]).any()
    again = make_splits(tr, te, cfg, seed=42)
    assert all(np.array_equal(s[k], again[k]) for k in s)
    other = make_splits(tr, te, cfg, seed=43)
    assert not np.array_equal(s["target_train"], other["target_train"])


def test_stratified_pool_keeps_class_balance() -> None:
    tr = np.repeat(np.arange(10), 500)
    cfg = DataConfig(stratified_pool=2000, train_size=1000, test_size=10, members=10, nonmembers=5)
    s = make_splits(tr, _labels(100), cfg, seed=42)
    for role in ("target", "shadow"):
        assert (np.bincount(tr[s[f"{role}_train"]], minlength=10) == 100).all()


def test_held_out_classes_are_excluded() -> None:
    tr, te = _labels(2000), _labels(1000, seed=1)
    cfg = DataConfig(
        train_size=500, test_size=200, members=100, nonmembers=100, held_out_classes=[3, 7]
    )
    s = make_splits(tr, te, cfg, seed=0)
    for key in ("target_train", "shadow_train"):
        assert not np.isin(tr[s[key]], [3, 7]).any()
    assert np.isin(te[s["held_out_test"]], [3, 7]).all()
    assert len(s["held_out_test"]) == np.isin(te, [3, 7]).sum()


def test_too_large_splits_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="exceeds"):
        make_splits(
            _labels(100),
            _labels(100),
            DataConfig(train_size=80, test_size=10, members=5, nonmembers=5),
            seed=0,
        )


def test_positions() -> None:
    split = np.array([2, 5, 9, 11])
    assert positions(split, np.array([5, 11])).tolist() == [1, 3]
    with pytest.raises(ValueError):
        positions(split, np.array([4]))
