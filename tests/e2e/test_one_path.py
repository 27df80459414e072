"""``mistrust run`` and ``mistrust audit`` share every step after the outputs.

A post-hoc variant registered here, and nowhere else, runs through both drivers: it
reads an evaluation set that neither run nor audit was asked for (``needs_sets``), which
each driver must then build for both roles because the variant object says so, not
because its name is on a list. Both drivers hand the same scoring and finishing
functions (:mod:`mistrust.pipeline`) the same arguments.

The study runs in the test process (the variant is registered here) with attacks that
train nothing: its post-hoc fit and attacks run in forked children, where torch may
refuse autograd after in-process audits (docs/TESTING.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

import mistrust.own.run
import mistrust.pipeline.finish
import mistrust.pipeline.scoring
import mistrust.study.run
from mistrust.calibration import variants
from mistrust.calibration.variants import PosthocVariant, register_variant
from mistrust.io import load_npz

NAME = "noise-temperature"
ROLES = ("target", "shadow")
STUDY = [
    "data.image_size=8",  # digits' own size: no resampling on either path
    "model.arch=mlp",
    "model.width=16",
    "train.epochs=3",
    "data.train_size=100",
    "data.test_size=100",
    "data.members=50",
    "data.nonmembers=50",
    f"variants.names=[base, {NAME}]",
    "attacks.names=[threshold, entropy, loss]",  # nothing trained in a forked child
    "eval.sets=[original, scaled]",  # no noise set: the variant asks for it
    "eval.gallery_size=0",  # no figures: matplotlib would cost seconds
]


class NoiseTemperature:
    """Divides the logits by the mean top logit of the role's noise set."""

    def fit(self, role: Any) -> NoiseTemperature:
        self.t = float(role.noise().logits.max(1).mean())
        return self

    def transform(self, out: Any) -> np.ndarray:
        return out.logits / np.float32(self.t)

    def fitted(self) -> dict[str, float]:
        return {"t": self.t}


def _spy(mp: pytest.MonkeyPatch, module: Any, name: str, calls: list) -> None:
    real = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append((module.__name__, name, args, kwargs))
        return real(*args, **kwargs)

    mp.setattr(module, name, spy)


def _audit_config(run: Path, where: Path) -> dict:
    """The run's base target and shadow as a model audit (factory, weights, .npz images)."""
    from mistrust.data.sources import get_source, load_source

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    splits, dataset = load_npz(run / "splits.npz"), cfg["data"]["dataset"]
    meta = torch.load(run / "models/base/target.pt", weights_only=True)["meta"]
    pools = {s: load_source(dataset, split=s) for s in ("train", "test")}
    roles: dict[str, dict] = {"target": {}, "shadow": {}}
    for role, parts in roles.items():
        for part, pool in (("members", "train"), ("nonmembers", "test")):
            drawn = pools[pool].subset(splits[f"{role}_{part}"])
            f = where / f"{role}_{part}.npz"
            np.savez(f, images=drawn.images.numpy(), labels=drawn.labels.numpy())
            parts[part] = {"npz": str(f)}
    spec = get_source(dataset)
    return {
        "name": "one-path",
        "target": {
            "factory": "mistrust.models:create_model",
            "factory_args": {
                k: meta[k] for k in ("arch", "channels", "num_classes", "size", "width")
            },
            "weights": str(run / "models/base/target.pt"),
            **roles["target"],
        },
        "shadow": {"source": "checkpoint", "weights": str(run / "models/base/shadow.pt")}
        | roles["shadow"],
        "preprocess": {
            "size": meta["size"],
            "channels": meta["channels"],
            "mean": list(spec.mean),
            "std": list(spec.std),
        },
        **{k: cfg[k] for k in ("seed", "train", "attacks", "eval")},
        "variants": {**cfg["variants"], "calibration_set": "nonmembers"},
    }


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list]:
    """A study and an audit of its base models, both with the variant registered here;
    every call of the shared scoring and finishing steps, recorded."""
    from mistrust.config import load_config

    root = tmp_path_factory.mktemp("one_path")
    calls: list = []
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(variants, "_VARIANTS", dict(variants._VARIANTS))
        register_variant(
            PosthocVariant(
                NAME,
                "logits over the noise set's mean top logit",
                lambda v, **_: NoiseTemperature(),
                needs_sets=("noise",),
            )
        )
        for driver in (mistrust.study.run, mistrust.own.run):
            _spy(mp, driver, "score_variants", calls)
            _spy(mp, driver, "finish_run", calls)
        run = root / "run"
        mistrust.study.run.run_experiment(load_config("smoke", STUDY), run, report=False)
        config = _audit_config(run, root)
        audit = root / "audit"
        mistrust.own.run.run_audit(config, audit, report=False)
    finally:
        mp.undo()
    return run, audit, calls


@pytest.mark.parametrize("door", ["run", "audit"])
def test_a_variant_registered_here_runs_through_both_drivers(both, door: str) -> None:
    out = both[0] if door == "run" else both[1]
    info = yaml.safe_load((out / "results.json").read_text())["variants"][NAME]
    for role in ROLES:
        noise = load_npz(out / "outputs" / "base" / role / "noise.npz")["logits"]
        t = float(noise.astype(np.float64).max(1).mean())
        assert info[role]["t"] == pytest.approx(t, rel=1e-6)
        base = load_npz(out / "outputs" / "base" / role / "train.npz")["logits"]
        got = load_npz(out / "outputs" / NAME / role / "train.npz")["logits"]
        np.testing.assert_allclose(got, base / t, rtol=1e-5)
    rows = (out / "results.csv").read_text().splitlines()
    keys = {
        v: {tuple(r.split(",")[1:4]) for r in rows if r.startswith(f"{v},")} for v in ("base", NAME)
    }
    assert keys[NAME] and keys[NAME] == keys["base"]
    # the per-sample view of an audit, as of a run
    assert (out / "vulnerable.csv").is_file() and (out / "agreement.csv").is_file()


def test_both_doors_fit_the_variant_alike(both) -> None:
    """The same models and images: the same noise set, the same fitted value per role."""
    run, audit, _ = both
    for role in ROLES:
        a = yaml.safe_load((run / "results.json").read_text())["variants"][NAME][role]["t"]
        b = yaml.safe_load((audit / "results.json").read_text())["variants"][NAME][role]["t"]
        assert a == pytest.approx(b, rel=1e-6)


def test_both_drivers_hand_the_shared_steps_the_same_arguments(both) -> None:
    assert mistrust.study.run.finish_run is mistrust.pipeline.finish.finish_run
    assert mistrust.own.run.finish_run is mistrust.pipeline.finish.finish_run
    assert mistrust.study.run.score_variants is mistrust.pipeline.scoring.score_variants
    assert mistrust.own.run.score_variants is mistrust.pipeline.scoring.score_variants
    _, _, calls = both
    for step in ("score_variants", "finish_run"):
        by = {module: (args, kwargs) for module, name, args, kwargs in calls if name == step}
        assert set(by) == {"mistrust.study.run", "mistrust.own.run"}, step
        (run_args, run_kw), (audit_args, audit_kw) = (
            by["mistrust.study.run"],
            by["mistrust.own.run"],
        )
        assert len(run_args) == len(audit_args), step
        assert set(run_kw) - {"here"} == set(audit_kw) - {"fork"}, step
        for key in ("variants", "attacks", "gallery_size", "seed", "batch_size"):
            if key in run_kw:
                assert run_kw[key] == audit_kw[key], key
    scored = {m: a for m, n, a, _ in calls if n == "score_variants"}
    assert [v.name for v in scored["mistrust.study.run"][0]] == ["base", NAME]
    assert [v.name for v in scored["mistrust.own.run"][0]] == ["base", NAME]


class _Identity:
    def fit(self, role: Any) -> _Identity:
        return self

    def transform(self, out: Any) -> np.ndarray:
        return out.logits

    def fitted(self) -> dict[str, float]:
        return {}


def _register(mp: pytest.MonkeyPatch, **kw: Any) -> None:
    mp.setattr(variants, "_VARIANTS", dict(variants._VARIANTS))
    register_variant(PosthocVariant("toy", "identity", lambda v, **_: _Identity(), **kw))


@pytest.mark.parametrize(("split", "who"), [("test", "non-members"), ("train", "members")])
def test_the_labels_a_variant_fits_on_are_asked_of_its_object(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, split: str, who: str
) -> None:
    """A variant's ``labelled_splits``, not its name, decide which missing labels refuse it."""
    from mistrust.core.outputs import Outputs
    from mistrust.errors import InputError
    from mistrust.pipeline.posthoc import check_labels
    from mistrust.runtime.paths import RunPaths

    paths = RunPaths(tmp_path)
    logits = np.zeros((3, 2), np.float32)
    for s in ("train", "test"):
        labels = np.array([0, -1 if s == split else 1, 0])
        Outputs(logits, labels).save(paths.outputs("base", "target", s))
    _register(monkeypatch, labelled_splits=(split,))
    with pytest.raises(InputError, match=f"toy fits on labelled data, but target's {who} have"):
        check_labels(paths, ("target",), "toy")
    check_labels(paths, ("target",), "temperature")  # fits on nothing: no labels needed


def test_an_audit_of_outputs_refuses_a_variant_that_reads_features(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mistrust.config import ConfigError
    from mistrust.config.own import load_audit_config

    _register(monkeypatch, needs_features=True)
    doc = {
        "logits": {"target": {"members": "m.npz", "nonmembers": "n.npz"}},
        "variants": {"names": ["base", "toy"]},
    }
    with pytest.raises(ConfigError, match="toy needs the model's last-layer features"):
        load_audit_config(doc)
    doc["variants"] = {"names": ["base", "temperature"]}
    assert load_audit_config(doc).variants.names == ["base", "temperature"]
