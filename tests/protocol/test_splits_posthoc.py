"""Splits and post-hoc calibration follow the documented protocol (fast, hand-made data).

Splits: target and shadow train / test splits are disjoint, class-stratified, of the
configured sizes; members come from a role's train split, non-members from its test
split, and the calibration data is the rest of that test split. Post-hoc variants
calibrate each role on its own calibration data only.
"""

from __future__ import annotations

import numpy as np
import pytest

from mistrust.config import ConfigError, load_config
from mistrust.core.outputs import Outputs
from mistrust.data.splits import make_splits, positions
from mistrust.runtime.paths import RunPaths


def _cfg(*extra: str):
    return load_config(
        "smoke",
        [
            "data.train_size=30",
            "data.test_size=20",
            "data.members=10",
            "data.nonmembers=8",
            *extra,
        ],
    ).data


TRAIN = np.repeat(np.arange(5), 20)  # 100 images, 20 per class
TEST = np.repeat(np.arange(5), 10)  # 50 images, 10 per class


def test_splits_are_disjoint_sized_and_nested() -> None:
    sp = make_splits(TRAIN, TEST, _cfg(), seed=0)
    assert not set(sp["target_train"]) & set(sp["shadow_train"])
    assert not set(sp["target_test"]) & set(sp["shadow_test"])
    for role in ("target", "shadow"):
        assert len(sp[f"{role}_train"]) == 30 and len(sp[f"{role}_test"]) == 20
        assert set(sp[f"{role}_members"]) <= set(sp[f"{role}_train"])
        assert set(sp[f"{role}_nonmembers"]) <= set(sp[f"{role}_test"])
        assert len(sp[f"{role}_members"]) == 10 and len(sp[f"{role}_nonmembers"]) == 8
        cal = sp[f"{role}_calibration"]
        assert sorted(np.r_[cal, sp[f"{role}_nonmembers"]]) == sorted(sp[f"{role}_test"])
        # stratified: 30 of 100 train images -> 6 per class; 20 of 50 test -> 4 per class
        assert (np.bincount(TRAIN[sp[f"{role}_train"]]) == 6).all()
        assert (np.bincount(TEST[sp[f"{role}_test"]]) == 4).all()
        for key in ("train", "test", "members", "nonmembers", "calibration"):
            a = sp[f"{role}_{key}"]
            assert a.dtype == np.int64 and list(a) == sorted(a) and len(set(a)) == len(a)
    assert len(sp["held_out_test"]) == 0
    again = make_splits(TRAIN, TEST, _cfg(), seed=0)
    assert all(np.array_equal(again[k], sp[k]) for k in sp)
    other = make_splits(TRAIN, TEST, _cfg(), seed=1)
    assert not np.array_equal(other["target_train"], sp["target_train"])


def test_largest_remainder_keeps_class_proportions() -> None:
    labels = np.r_[np.zeros(50), np.ones(30), np.full(20, 2)].astype(int)
    sp = make_splits(labels, TEST, _cfg("data.train_size=11"), seed=3)
    # 11 of (50, 30, 20): quotas 5.5, 3.3, 2.2 -> 5 + 3 + 2 = 10, the extra one to class 0
    assert np.bincount(labels[sp["target_train"]]).tolist() == [6, 3, 2]


def test_held_out_classes_leave_every_split() -> None:
    sp = make_splits(TRAIN, TEST, _cfg("data.held_out_classes=[4]"), seed=0)
    for k, v in sp.items():
        pool = TEST if k.endswith(("test", "nonmembers", "calibration")) else TRAIN
        if k == "held_out_test":
            assert sorted(v) == list(np.flatnonzero(TEST == 4))
        else:
            assert (pool[v] != 4).all(), k


def test_stratified_pool_and_limits() -> None:
    sp = make_splits(TRAIN, TEST, _cfg("data.stratified_pool=60"), seed=0)
    pool = np.r_[sp["target_train"], sp["shadow_train"]]
    assert (np.bincount(TRAIN[pool]) == 12).all()
    with pytest.raises(ConfigError, match="stratified_pool"):
        make_splits(TRAIN, TEST, _cfg("data.stratified_pool=59"), seed=0)
    with pytest.raises(ConfigError, match="stratified_pool"):
        make_splits(TRAIN, TEST, _cfg("data.stratified_pool=101"), seed=0)
    make_splits(TRAIN, TEST, _cfg("data.stratified_pool=100"), seed=0)
    make_splits(TRAIN, TEST, _cfg("data.train_size=50", "data.test_size=25"), seed=0)
    with pytest.raises(ConfigError, match="train_size"):
        make_splits(TRAIN, TEST, _cfg("data.train_size=51"), seed=0)
    with pytest.raises(ConfigError, match="test_size"):
        make_splits(TRAIN, TEST, _cfg("data.test_size=26"), seed=0)


def test_positions() -> None:
    split = np.array([2, 5, 7, 11])
    np.testing.assert_array_equal(positions(split, np.array([5, 11])), [1, 3])
    assert len(positions(split, np.array([], np.int64))) == 0
    with pytest.raises(ValueError, match="not contained"):
        positions(split, np.array([6]))
    with pytest.raises(ValueError, match="not contained"):
        positions(split, np.array([12]))


# --- post-hoc ---------------------------------------------------------------------------


def _apply(name: str, cfg, run_dir, sp) -> dict:
    """apply_posthoc(name) on the outputs under ``run_dir``, with the run's seed and batch size."""
    from mistrust.pipeline.posthoc import apply_posthoc

    return apply_posthoc(
        name, cfg.variants, RunPaths(run_dir), sp, seed=cfg.seed, batch_size=cfg.train.batch_size
    )


def _outputs_dir(tmp_path, splits) -> None:
    """base outputs for both roles: test.npz rows follow ``{role}_test``; labels = class 0
    with logits that make the two roles' best temperatures differ clearly."""
    rng = np.random.default_rng(0)
    for role, scale in (("target", 4.0), ("shadow", 0.5)):
        n = len(splits[f"{role}_test"])
        logits = rng.normal(size=(n, 3)) * scale
        # right 80% of the time on even rows, 40% on odd rows: the fitted temperature
        # depends on which rows it sees
        right = rng.uniform(size=n) < np.where(np.arange(n) % 2 == 0, 0.8, 0.4)
        labels = np.where(right, logits.argmax(1), (logits.argmax(1) + 1) % 3)
        Outputs(logits.astype(np.float32), labels).save(tmp_path / f"outputs/base/{role}/test.npz")
        Outputs(logits[:5].astype(np.float32), labels[:5]).save(
            tmp_path / f"outputs/base/{role}/scaled.npz"
        )


def test_temperature_fit_uses_each_roles_own_calibration_split(tmp_path) -> None:
    from mistrust.calibration import fit_temperature

    cfg = load_config("smoke", [])
    sp = {
        "target_test": np.arange(0, 40),
        "target_calibration": np.arange(0, 40, 2),
        "shadow_test": np.arange(40, 80),
        "shadow_calibration": np.arange(41, 80, 2),
    }
    _outputs_dir(tmp_path, sp)
    info = _apply("temperature-fit", cfg, tmp_path, sp)
    for role in ("target", "shadow"):
        test = Outputs.load(tmp_path / f"outputs/base/{role}/test.npz")
        pos = np.searchsorted(sp[f"{role}_test"], sp[f"{role}_calibration"])
        want = fit_temperature(test.logits[pos], test.labels[pos])
        assert info[role]["temperature"] == pytest.approx(float(want))
        wrong = fit_temperature(test.logits, test.labels)  # all of the test split
        assert abs(float(wrong) - float(want)) > 1e-3
        for name in ("test", "scaled"):
            base = Outputs.load(tmp_path / f"outputs/base/{role}/{name}.npz")
            out = Outputs.load(tmp_path / f"outputs/temperature-fit/{role}/{name}.npz")
            np.testing.assert_allclose(out.logits, base.logits / want, rtol=1e-5)
            np.testing.assert_array_equal(out.labels, base.labels)
    assert info["target"]["temperature"] != pytest.approx(info["shadow"]["temperature"])


def test_fixed_temperature_and_errors(tmp_path) -> None:
    cfg = load_config("smoke", ["variants.temperature=2.5"])
    sp = {
        "target_test": np.arange(0, 40),
        "target_calibration": np.arange(0, 0),
        "shadow_test": np.arange(40, 80),
        "shadow_calibration": np.arange(0, 0),
    }
    _outputs_dir(tmp_path, sp)
    info = _apply("temperature", cfg, tmp_path, sp)
    assert info["target"]["temperature"] == 2.5 and info["shadow"]["temperature"] == 2.5
    base = Outputs.load(tmp_path / "outputs/base/shadow/scaled.npz")
    out = Outputs.load(tmp_path / "outputs/temperature/shadow/scaled.npz")
    np.testing.assert_allclose(out.logits, base.logits / 2.5, rtol=1e-6)
    with pytest.raises(ConfigError, match="held-out data"):
        _apply("temperature-fit", cfg, tmp_path, sp)
    with pytest.raises(ValueError, match="not a post-hoc variant"):
        _apply("base", cfg, tmp_path, sp)


def test_laplace_fits_each_role_on_its_own_data(tmp_path, monkeypatch) -> None:
    """Which data reach the last-layer Laplace fit, role by role: the role's training
    features and labels, its calibration rows, its noise set and its own model's head."""
    import torch

    import mistrust.calibration as calibration

    cfg = load_config("smoke", ["variants.laplace_grid=4", "variants.laplace_samples=7"])
    rng = np.random.default_rng(5)
    sp = {"target_test": np.arange(10), "shadow_test": np.arange(10, 20)}
    sp["target_calibration"], sp["shadow_calibration"] = np.arange(0, 10, 3), np.arange(11, 20, 4)
    files = {}
    for role in ("target", "shadow"):
        for name, n in (("train", 6), ("test", 10), ("noise", 4)):
            out = Outputs(
                rng.normal(size=(n, 3)).astype(np.float32),
                rng.integers(0, 3, n),
                rng.normal(size=(n, 5)).astype(np.float32),
            )
            out.save(tmp_path / f"outputs/base/{role}/{name}.npz")
            files[(role, name)] = out
        state = {"head.weight": torch.randn(3, 5), "head.bias": torch.randn(3)}
        (tmp_path / "models/base").mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": state, "meta": {}}, tmp_path / f"models/base/{role}.pt")
        files[(role, "head")] = state

    calls = []

    class Fitted:
        prior_precision_ = 2.5

        def __init__(self, shift: float) -> None:
            self.shift = shift

        def predict_logprobs(self, feats):
            return np.asarray(feats)[:, :3] + self.shift

    def fake_fit(head, train_feats, train_labels, **kwargs):
        calls.append((head, train_feats, train_labels, kwargs))
        return Fitted(float(len(calls)))

    monkeypatch.setattr(calibration, "fit_last_layer_laplace", fake_fit)
    info = _apply("laplace", cfg, tmp_path, sp)
    assert len(calls) == 2
    for (head, feats, labels, kw), role in zip(calls, ("target", "shadow"), strict=True):
        torch.testing.assert_close(head.weight.data, files[(role, "head")]["head.weight"])
        torch.testing.assert_close(head.bias.data, files[(role, "head")]["head.bias"])
        np.testing.assert_array_equal(feats, files[(role, "train")].features)
        np.testing.assert_array_equal(labels, files[(role, "train")].labels)
        pos = np.searchsorted(sp[f"{role}_test"], sp[f"{role}_calibration"])
        np.testing.assert_array_equal(kw["val_feats"], files[(role, "test")].features[pos])
        np.testing.assert_array_equal(kw["val_labels"], files[(role, "test")].labels[pos])
        np.testing.assert_array_equal(kw["ood_feats"], files[(role, "noise")].features)
        v = cfg.variants
        assert (kw["prior"], kw["grid_size"], kw["n_samples"], kw["pred"], kw["seed"]) == (
            v.laplace_prior,
            4,
            7,
            v.laplace_pred,
            cfg.seed,
        )
        assert info[role]["prior_precision"] == 2.5 and info[role]["seconds"] >= 0
    for i, role in enumerate(("target", "shadow"), start=1):
        for name in ("train", "test", "noise"):
            out = Outputs.load(tmp_path / f"outputs/laplace/{role}/{name}.npz")
            np.testing.assert_allclose(out.logits, files[(role, name)].features[:, :3] + i)
            np.testing.assert_array_equal(out.labels, files[(role, name)].labels)


class _Payload:
    """A pickled object that is not a tensor (a model file must never hold one)."""


def test_laplace_head_is_read_without_unpickling_objects(tmp_path) -> None:
    import pickle

    import torch

    from mistrust.pipeline.posthoc import _head

    state = {"head.weight": torch.ones(2, 3), "head.bias": torch.zeros(2)}
    torch.save({"state_dict": state, "meta": {}}, tmp_path / "ok.pt")
    head = _head(tmp_path / "ok.pt")
    torch.testing.assert_close(head.weight.data, torch.ones(2, 3))
    torch.save({"state_dict": state, "meta": {"x": _Payload()}}, tmp_path / "bad.pt")
    with pytest.raises(pickle.UnpicklingError):
        _head(tmp_path / "bad.pt")
