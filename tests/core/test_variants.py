"""Variants are registered strategies: one registration makes a new one run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mistrust.calibration import variants
from mistrust.calibration.variants import (
    PosthocVariant,
    TrainingVariant,
    get_variant,
    register_variant,
)
from mistrust.config import ConfigError, TrainConfig, load_config
from mistrust.core.outputs import Outputs
from mistrust.runtime.paths import RunPaths


def test_training_variants_change_only_their_setting() -> None:
    v = load_config("smoke", ["variants.weight_decay=0.25", "variants.label_smoothing=0.3"])
    base = TrainConfig(lr=0.5)
    assert get_variant("base").train_config(base, v.variants) is base
    wd = get_variant("weight-decay").train_config(base, v.variants)
    assert wd == dataclasses.replace(base, weight_decay=0.25) and base.weight_decay == 0.0
    ls = get_variant("label-smoothing").train_config(base, v.variants)
    assert ls == dataclasses.replace(base, label_smoothing=0.3)


def test_a_registered_training_variant_is_a_config_choice(monkeypatch) -> None:
    monkeypatch.setattr(variants, "_VARIANTS", dict(variants._VARIANTS))
    with pytest.raises(ConfigError, match="unknown variant 'slow'"):
        load_config("smoke", ["variants.names=[base, slow]"])
    register_variant(TrainingVariant("slow", "a tenth of the rate", lambda v: {"lr": 1e-4}))
    cfg = load_config("smoke", ["variants.names=[base, slow]"])
    assert get_variant("slow").train_config(cfg.train, cfg.variants).lr == 1e-4
    with pytest.raises(ValueError, match="already registered"):
        register_variant(TrainingVariant("slow", "again"))


class _Shift:
    """A toy post-hoc step: subtract the mean logit of the role's calibration rows."""

    def fit(self, role):
        self.shift_ = float(role.calibration().logits.mean())
        return self

    def transform(self, out):
        return out.logits - self.shift_

    def fitted(self):
        return {"shift": self.shift_}


def test_a_registered_posthoc_variant_runs_per_role(monkeypatch, tmp_path) -> None:
    from mistrust.pipeline.posthoc import apply_posthoc

    monkeypatch.setattr(variants, "_VARIANTS", dict(variants._VARIANTS))
    register_variant(
        PosthocVariant(
            "shift", "minus the calibration mean", lambda v, **_: _Shift(), lambda v: True
        )
    )
    cfg = load_config("smoke", ["variants.names=[base, shift]"])
    splits = {"target_test": np.arange(4), "shadow_test": np.arange(4, 8)}
    splits |= {"target_calibration": np.array([0, 1]), "shadow_calibration": np.array([7])}
    logits = {"target": np.arange(12.0).reshape(4, 3), "shadow": -np.arange(12.0).reshape(4, 3)}
    for role, z in logits.items():
        Outputs(z.astype(np.float32), np.zeros(4, int)).save(
            tmp_path / f"outputs/base/{role}/test.npz"
        )
    info = apply_posthoc("shift", cfg.variants, RunPaths(tmp_path), splits, seed=0, batch_size=1)
    # target rows 0, 1 hold 0..5 (mean 2.5); shadow row 3 (split position of 7) holds -9..-11
    assert info["target"]["shift"] == 2.5 and info["shadow"]["shift"] == -10.0
    out = Outputs.load(tmp_path / "outputs/shift/shadow/test.npz")
    np.testing.assert_array_equal(out.logits, logits["shadow"] + 10.0)
    assert get_variant("shift").needs_held_out(cfg.variants)


def test_sets_a_variant_reads_are_built() -> None:
    assert variants.sets_needed(["base", "laplace", "temperature"]) == ["noise"]
    assert variants.sets_needed(["base", "temperature-fit"]) == []
    assert "noise" in variants.sets_fitted_on()
