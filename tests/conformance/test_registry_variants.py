"""Conformance of every registered variant (``calibration.variants``).

Each name of ``variant_names()`` at collection time goes through the contract of its kind;
a family (``dp-sgd``) goes through it as the members the config expands it into (the
stages never see a family's own name), and answers the config's checks as its members do.

* A training-time variant changes only training settings that exist, leaves the base
  settings alone and gives the same settings twice; the post-hoc stage refuses it.
* A post-hoc variant runs through the post-hoc stage (``pipeline.posthoc.apply_posthoc``) on
  a tiny run directory of synthetic base outputs (no model trained): one ``(N, C)`` finite
  output per base file, the same bytes for the same seed, a float per fitted value, and
  higher max score = member still (the members' outputs stay the more confident).
  ``needs_held_out`` and ``needs_sets`` tell the truth: a variant that needs held-out
  data gives one clear ConfigError without it, one that does not runs without it, and one
  that does not name the noise set runs without its outputs.

The module takes a couple of seconds (Laplace on 6 features, a 3-point prior grid).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mistrust.calibration.variants import BASE, expand_names, get_variant, variant_names
from mistrust.config import TrainConfig, VariantsConfig
from mistrust.core.outputs import Outputs
from mistrust.data.evalsets import evalset_names
from mistrust.errors import ConfigError
from mistrust.pipeline.posthoc import apply_posthoc
from mistrust.runtime.paths import RunPaths

D, C = 6, 3  # features, classes
#: small Laplace settings; the rest are the defaults
SETTINGS = VariantsConfig(laplace_grid=3, laplace_samples=8)
NAMES = expand_names(variant_names(), SETTINGS)  # a family: its members
FAMILIES = [n for n in variant_names() if n not in NAMES]
TRAINED = [n for n in NAMES if not get_variant(n).posthoc]
POSTHOC = [n for n in NAMES if get_variant(n).posthoc]


def test_the_kinds_are_registered() -> None:
    assert BASE in TRAINED and {"temperature", "laplace"} <= set(POSTHOC)


@pytest.mark.parametrize("name", NAMES)
def test_what_it_needs_is_registered(name: str) -> None:
    variant = get_variant(name)
    assert set(variant.needs_sets) <= set(evalset_names())
    for calibration_set in ("held-out", "nonmembers"):
        settings = dataclasses.replace(SETTINGS, calibration_set=calibration_set)
        assert isinstance(variant.needs_held_out(settings), bool)
    assert variant.description


@pytest.mark.parametrize("name", FAMILIES)
def test_a_family_answers_as_its_members(name: str) -> None:
    family, members = get_variant(name), expand_names([name], SETTINGS)
    assert members and family.description
    for attr in ("posthoc", "from_base", "needs_features", "labelled_splits", "needs_sets"):
        assert {getattr(family, attr) == getattr(get_variant(m), attr) for m in members} == {True}
    assert family.needs_held_out(SETTINGS) == get_variant(members[0]).needs_held_out(SETTINGS)


# --- training-time variants ------------------------------------------------------------


@pytest.mark.parametrize("name", TRAINED)
def test_training_variant_changes_only_training_settings(name: str) -> None:
    variant = get_variant(name)
    base = TrainConfig()
    before = dataclasses.asdict(base)
    changed = variant.train_config(base, SETTINGS)
    assert isinstance(changed, TrainConfig) and dataclasses.asdict(base) == before
    assert changed == variant.train_config(TrainConfig(), SETTINGS)  # the same twice
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(variant.changes(SETTINGS)) <= names
    diff = {k for k, v in dataclasses.asdict(changed).items() if before[k] != v}
    assert diff <= set(variant.changes(SETTINGS))


@pytest.mark.parametrize("name", TRAINED)
def test_the_posthoc_stage_refuses_a_training_variant(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a post-hoc variant") as err:
        apply_posthoc(name, SETTINGS, RunPaths(tmp_path), {}, seed=0, batch_size=8)
    assert "\n" not in str(err.value)


# --- post-hoc variants, through the post-hoc stage --------------------------------------


def _run(root: Path, *, held_out: bool = True, noise: bool = True) -> tuple[RunPaths, dict]:
    """A run directory with base models' heads and outputs of both roles: 40 members
    (train split) whose features point far along their class, 40 test rows (the first 20 the
    non-members, the rest held-out calibration rows when ``held_out``), 20 noise rows."""
    paths = RunPaths(root)
    rng = np.random.default_rng(0)
    head = torch.nn.Linear(D, C)
    with torch.no_grad():
        head.weight.copy_(torch.eye(C, D) * 2.0)
        head.bias.zero_()
    n_test = 40 if held_out else 20
    for role in ("target", "shadow"):
        paths.model(BASE, role).parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"state_dict": {f"head.{k}": v for k, v in head.state_dict().items()}},
            paths.model(BASE, role),
        )
        for ds, n, gap in (("train", 40, 3.0), ("test", n_test, 0.8), ("noise", 20, 0.0)):
            if ds == "noise" and not noise:
                continue
            labels = rng.integers(0, C, n)
            feats = rng.normal(scale=0.5, size=(n, D)).astype(np.float32)
            feats[np.arange(n), labels] += gap
            logits = head(torch.from_numpy(feats)).detach().numpy()
            Outputs(logits, labels if ds != "noise" else np.full(n, -1), feats).save(
                paths.outputs(BASE, role, ds)
            )
    splits = {}
    for role in ("target", "shadow"):
        splits[f"{role}_test"] = np.arange(n_test)
        splits[f"{role}_nonmembers"] = np.arange(20)
        splits[f"{role}_calibration"] = np.arange(20, n_test)
    return paths, splits


def _apply(name: str, root: Path, settings=SETTINGS, **run) -> tuple[RunPaths, dict]:
    paths, splits = _run(root, **run)
    info = apply_posthoc(name, settings, paths, splits, seed=3, batch_size=8)
    return paths, info


@pytest.mark.parametrize("name", POSTHOC)
def test_posthoc_variant_end_to_end(name: str, tmp_path: Path) -> None:
    paths, info = _apply(name, tmp_path / "a")
    again, _ = _apply(name, tmp_path / "b")
    for role in ("target", "shadow"):
        assert all(isinstance(v, float) for v in info[role].values())
        for ds in ("train", "test", "noise"):
            base = Outputs.load(paths.outputs(BASE, role, ds))
            out = Outputs.load(paths.outputs(name, role, ds))
            assert out.logits.shape == base.logits.shape and np.isfinite(out.logits).all()
            np.testing.assert_array_equal(out.labels, base.labels)
            twice = Outputs.load(again.outputs(name, role, ds))
            assert out.logits.tobytes() == twice.logits.tobytes()
    # higher max score = member: the members' transformed outputs stay the more confident
    members = Outputs.load(paths.outputs(name, "target", "train")).logits
    others = Outputs.load(paths.outputs(name, "target", "test")).logits[:20]
    top = torch.softmax(torch.from_numpy(np.r_[members, others]).double(), 1).max(1).values
    assert roc_auc_score(np.arange(60) < 40, top.numpy()) > 0.9


@pytest.mark.parametrize("name", POSTHOC)
def test_posthoc_variant_needs_what_it_says(name: str, tmp_path: Path) -> None:
    variant = get_variant(name)
    held_out = dataclasses.replace(SETTINGS, calibration_set="held-out")
    if variant.needs_held_out(held_out):
        with pytest.raises(ConfigError, match="needs held-out data") as err:
            _apply(name, tmp_path / "none", held_out, held_out=False)
        assert "\n" not in str(err.value)
    else:  # never reads the held-out rows, so runs without them
        _apply(name, tmp_path / "none", held_out, held_out=False)
    if "noise" not in variant.needs_sets:
        _apply(name, tmp_path / "no-noise", noise=False)
