"""reference_attack_rows end to end on tiny digits data: rows, score files, keep matrix, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mistrust.attacks import REFERENCE_ATTACKS
from mistrust.config import ConfigError, check_reference_config, load_config
from mistrust.data.population import make_population
from mistrust.io import load_npz
from mistrust.metrics import METRIC_KEYS
from mistrust.runtime.paths import RunPaths
from mistrust.study.data import build_evalsets, load_data
from mistrust.study.reference import reference_attack_rows
from mistrust.study.run import _outputs_for
from mistrust.study.train import train_or_load

SETS = ["original", "permuted", "scaled", "noise"]


def _cfg(*extra: str):
    return load_config(
        "smoke",
        [
            "model.arch=mlp",
            "model.width=16",
            "train.epochs=1",
            "data.train_size=64",
            "data.test_size=64",
            "data.members=32",
            "data.nonmembers=32",
            f"eval.sets={SETS}",
            "variants.names=[base]",
            "attacks.names=[threshold]",
            "reference.n_models=4",
            "reference.z_size=40",
            f"reference.attacks={list(REFERENCE_ATTACKS)}",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """A run directory with the base target model and its outputs (as experiment.py makes)."""
    cfg = _cfg("reference.augment_queries=true")
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    data = load_data(cfg.data, seed=cfg.seed)
    sets = build_evalsets(
        cfg.data, cfg.eval, cfg.variants.names, data, run_dir / "cache", "cpu", False, seed=cfg.seed
    )
    model, _, _ = train_or_load(
        cfg.data,
        cfg.model,
        cfg.train,
        role="target",
        train_set=data.train.subset(data.splits["target_train"]),
        preprocess=data.preprocess,
        num_classes=data.num_classes,
        seed=cfg.seed,
        model_path=run_dir / "models/base/target.pt",
        device=torch.device("cpu"),
        progress=False,
    )
    _outputs_for(model, "target", data, sets, RunPaths(run_dir), cfg, torch.device("cpu"))
    rows = reference_attack_rows(cfg, data, sets, RunPaths(run_dir), device="cpu", progress=False)
    return cfg, data, sets, run_dir, rows


def test_rows_for_every_attack_and_set(run) -> None:
    _, _, _, run_dir, rows = run
    got = {(a, d, m) for v, a, d, m, _ in rows}
    assert {v for v, *_ in rows} == {"base"}
    for attack in REFERENCE_ATTACKS:
        for ds in SETS:
            assert all((attack, ds, k) in got for k in METRIC_KEYS), (attack, ds)
            f = load_npz(run_dir / "scores/base" / attack / f"{ds}.npz")
            assert set(f) == {"score", "is_member", "predicted", "max_score"}
            assert len(f["score"]) == 64 and f["is_member"].sum() == 32
            assert f["predicted"].dtype == bool and np.isfinite(f["score"]).all()
    values = {(a, d, m): x for _, a, d, m, x in rows}
    for attack in ("lira-online", "rmia-online"):
        assert values[(attack, "original", "offline_on_ood")] == 0.0
        assert values[(attack, "scaled", "offline_on_ood")] == 0.0  # copies of non-members
        assert values[(attack, "noise", "offline_on_ood")] == 1.0
        # documented: on OOD sets the online attack IS its offline counterpart; on perturbed
        # copies of the non-members it runs online
        off = attack.replace("online", "offline")

        def score(name: str, ds: str) -> np.ndarray:
            return load_npz(run_dir / "scores/base" / name / f"{ds}.npz")["score"]

        np.testing.assert_array_equal(score(attack, "noise"), score(off, "noise"))
        assert not np.array_equal(score(attack, "scaled"), score(off, "scaled"))
    assert ("lira-offline", "original", "offline_on_ood") not in values
    assert any(d == "shadow" and m == "operating_score" for _, _, d, m, _ in rows)


def test_keep_matrix_and_files(run) -> None:
    _, _, _, run_dir, _ = run
    keep = load_npz(run_dir / "reference_keep.npz")
    a = int(keep["n_audited"])
    assert a == 64 and keep["keep"].shape == (4, 64 + 64)
    assert (keep["keep"][:, :a].sum(0) == 2).all(), "each audited sample IN for half the models"
    assert (keep["keep"].sum(1) == 64).all(), "each model trains on population_size samples"
    assert (keep["z"] >= a).all() and len(keep["z"]) == 40
    for i in range(4):
        assert (run_dir / "models/reference" / f"{i}.pt").is_file()
        for name in ("population", "population-flip", "scaled", "scaled-flip", "permuted"):
            assert (run_dir / "outputs/reference" / str(i) / f"{name}.npz").is_file()
    assert (run_dir / "outputs/reference/target/z.npz").is_file()
    assert not list(run_dir.rglob("*.ckpt.pt"))


def test_second_call_trains_nothing(run, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, data, sets, run_dir, rows = run

    def fail(*args, **kwargs):
        raise AssertionError("a reference model was retrained")

    monkeypatch.setattr("mistrust.study.train.train_model", fail)
    again = reference_attack_rows(cfg, data, sets, RunPaths(run_dir), device="cpu", progress=False)
    np.testing.assert_equal(again, rows)


def test_population_design() -> None:
    splits = {
        "target_members": np.arange(5),
        "target_nonmembers": np.arange(6),
        "shadow_train": np.arange(10, 30),
    }
    pop = make_population(splits, n_models=5, population_size=12, z_size=50, seed=0)
    counts = pop.keep[:, :11].sum(0)
    assert set(counts.tolist()) <= {2, 3}  # odd n_models: the last model draws its own half
    assert (pop.keep[0, :11] ^ pop.keep[1, :11]).all()  # complementary pairs
    assert (pop.keep.sum(1) == 12).all() and len(pop.z) == 20  # z capped at the pool
    # more models later: the existing models keep their training sets (and are reused)
    more = make_population(splits, n_models=8, population_size=12, z_size=50, seed=0)
    np.testing.assert_array_equal(more.keep[:5], pop.keep)
    with pytest.raises(ConfigError, match="population_size"):
        make_population(splits, n_models=4, population_size=3, z_size=5, seed=0)


def test_config_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="unknown attack 'lira'"):
        check_reference_config(_cfg("reference.attacks=[lira]"))
    with pytest.raises(ConfigError, match="duplicates"):
        check_reference_config(_cfg("reference.attacks=[lira-online, lira-online]"))
