"""One study, its base target audited again through every other way in: same numbers.

A number must not depend on the door it came through. A small ``mistrust run`` (digits,
a tiny MLP, ``base`` and ``temperature-fit``, every score-based attack, the original
non-members, two perturbed sets, noise and, where installed, Fashion-MNIST) is audited
again

1. by ``mistrust audit`` from the run's saved weights (factory
   ``mistrust.models:create_model`` with ``models/base/target.pt``; the shadow's as a
   checkpoint) on the same images: the target's as registry rows (index files), the
   shadow's as uint8 ``.npz`` arrays;
2. by ``mistrust audit`` from the run's saved outputs (``logits:``, no model runs);
3. by ``mistrust.audit`` on the same arrays.

Every row of ``results.csv`` that a door shares with the run must agree: the decisions
(rates, counts, their intervals, flags, verdicts) exactly, every other value to 1e-6
(float32 outputs computed in other batches may differ in their last bits). A door must
have exactly the run's rows, less those it cannot have (listed with the reason). So must
the per-sample scores behind them (``scores/<variant>/<attack>/<set>.npz``): a change to
one sample moves an aggregate row by less than the tolerance.

The MLP answers every set in one batch of ``train.eval_batch_size`` on every path, so
here the numbers agree to the bit. A convnet, which a run queries 64 inputs at a time
(``outputs.CPU_CONV_BATCH``) and an audit in batches of ``train.eval_batch_size``, moved
rows by up to 5e-7 (the loss attacks' operating scores; SalemCNN at 16 px) and the
per-sample scores of the scaled set by up to 5.5e-4, about 9 float32 rounding steps of
their logits (of order 10^2 to 10^3 there): such a study needs a per-sample tolerance
scaled by the logits.

Left out of the study because the doors cannot hold the same set under one name: the GAN
set (``mistrust audit`` trains its GAN on the target's non-members, having no training
pool; a run trains it on training-pool images outside the target's train split) and
``held-out`` (an audit of a given model has no held-out classes).
"""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import mistrust
from mistrust.checks.assemble import verdict_of_rows
from mistrust.checks.measure import BASELINE_KEYS
from mistrust.cli import main
from mistrust.data.sources import get_source, load_source, source_labels
from mistrust.data.splits import positions
from mistrust.errors import DataError
from mistrust.io import load_npz

Key = tuple[str, str, str, str]  # variant, attack, dataset, metric

VARIANTS = ["base", "temperature-fit"]
STUDY = [
    "--preset",
    "smoke",  # digits, every score-based attack
    "--quiet",
    "--no-report",  # results.csv is what is compared
    "--set",
    "data.image_size=8",  # digits' own size: no resampling on any path
    "--set",
    "model.arch=mlp",
    "--set",
    "model.width=16",
    "--set",
    "train.epochs=20",
    "--set",
    "train.lr=0.01",
    "--set",
    "data.train_size=100",
    "--set",
    "data.test_size=100",
    "--set",
    "data.members=50",
    "--set",
    "data.nonmembers=50",  # the other 50 of each test split: held-out calibration
    "--set",
    f"variants.names=[{', '.join(VARIANTS)}]",
    "--set",
    "eval.gallery_size=0",
]
#: what a run writes and an audit copies from it
SHARED_SECTIONS = ("seed", "train", "variants", "attacks", "eval")
#: the parts of a role's data, and the pool each is drawn from
PARTS = {"members": "train", "nonmembers": "test", "calibration": "test"}
#: compared exactly: decisions at the shadow's threshold, counts and what follows from them
DECISIONS = {
    "tpr",
    "fpr",
    "precision",
    "accuracy",
    "advantage",
    "tpr_ci_low",
    "tpr_ci_high",
    "fpr_ci_low",
    "fpr_ci_high",
    "n_members",
    "n_nonmembers",
    "flag_ties",
    "flag_constant",
    "flag_null",
    "flag_polarity",
    "verdict",
}
TOLERANCE = 1e-6
#: the leakage p-values, which compare with the blind baseline off an i.i.d. set
P_BASELINE = {"p_leakage", "p_leakage_holm"}

#: the blind baseline's rows (docs/CHECKS.md): it needs the inputs, which outputs alone
#: do not have, so an audit of logits has none of them
BASELINE_ROWS = set(BASELINE_KEYS)


def _sets() -> list[str]:
    sets = ["original", "permuted", "scaled", "noise"]
    try:
        source_labels("fashion-mnist", "test", None)
    except DataError:
        return sets  # not installed: the study has no other dataset
    return [*sets, "fashion-mnist"]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run directory. The console runs it: the run fits its post-hoc variant in a
    forked process, which torch refuses in a test process that audited in-process before
    (docs/TESTING.md)."""
    out = tmp_path_factory.mktemp("cross_path") / "run"
    sets = ["--set", f"eval.sets=[{', '.join(_sets())}]"]
    cmd = [sys.executable, "-m", "mistrust.cli", "run", *STUDY, *sets, "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def _rows(path: Path) -> dict[Key, float]:
    with open(path, newline="") as fh:
        return {
            (r["variant"], r["attack"], r["dataset"], r["metric"]): float(r["value"])
            for r in csv.DictReader(fh)
        }


def _same(a: float, b: float, metric: str) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b if metric in DECISIONS else abs(a - b) <= TOLERANCE


def _assert_same(run: dict[Key, float], door: dict[Key, float], *, missing: set[Key]) -> None:
    """``door`` holds the run's rows less ``missing``, each with the run's value."""
    assert not set(door) - set(run), sorted(set(door) - set(run))[:5]
    assert set(run) - set(door) == missing, sorted((set(run) - set(door)) ^ missing)[:5]
    differ = [(k, run[k], door[k]) for k in door if not _same(run[k], door[k], k[3])]
    assert not differ, f"{len(differ)} of {len(door)} rows differ, e.g. {differ[:5]}"


def _assert_same_scores(run: Path, door: Path) -> None:
    """Every per-sample score file under ``run`` is under ``door``: the same members and
    decisions, the same scores to 1e-6."""
    files = sorted(p.relative_to(run) for p in run.rglob("*.npz"))
    assert files and files == sorted(p.relative_to(door) for p in door.rglob("*.npz"))
    for f in files:
        want, got = load_npz(run / f), load_npz(door / f)
        for key in ("is_member", "predicted"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{f}: {key}")
        for key in ("score", "max_score"):
            np.testing.assert_allclose(
                got[key], want[key], rtol=TOLERANCE, atol=TOLERANCE, err_msg=f"{f}: {key}"
            )


def _part(run: Path, variant: str, role: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    """``role``'s cached logits and labels of ``variant`` on one part of its data."""
    split, splits = PARTS[part], load_npz(run / "splits.npz")
    out = load_npz(run / "outputs" / variant / role / f"{split}.npz")
    pos = positions(splits[f"{role}_{split}"], splits[f"{role}_{part}"])
    return out["logits"][pos], out["labels"][pos]


def _arrays(run: Path, variant: str, role: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(logits, labels, is_member)`` of ``role``: its members, then its non-members."""
    (lm, ym), (ln, yn) = (_part(run, variant, role, p) for p in ("members", "nonmembers"))
    is_member = np.arange(len(lm) + len(ln)) < len(lm)
    return np.concatenate([lm, ln]), np.concatenate([ym, yn]), is_member


def _iid_sets(run: dict[Key, float]) -> list[str]:
    """The sets the run vouched i.i.d. (``iid_split`` 1): an audit declares the same ones
    (``eval.iid_sets``, ``iid_sets=``), as a user who drew the split would."""
    return sorted({k[2] for k, x in run.items() if k[3] == "iid_split" and x == 1.0})


def _audit(config: dict, where: Path) -> dict[Key, float]:
    """``mistrust audit`` of ``config`` (written as YAML) into ``where/run``; its rows."""
    (where / "audit.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    args = ["audit", str(where / "audit.yaml"), "--out", str(where / "run"), "--no-report"]
    assert main([*args, "--quiet"]) == 0
    return _rows(where / "run" / "results.csv")


def test_model_audit_gives_the_run_s_rows(study: Path, tmp_path: Path) -> None:
    """Door 1: the saved weights on the same images, through the model's own path
    (preprocessing, outputs, evaluation sets, blind baseline, post-hoc fit)."""
    cfg, splits = _config(study), load_npz(study / "splits.npz")
    meta = torch.load(study / "models/base/target.pt", weights_only=True)["meta"]
    dataset = cfg["data"]["dataset"]
    pools = {s: load_source(dataset, split=s) for s in ("train", "test")}
    target, shadow = {}, {}
    for part, pool in PARTS.items():
        index = splits[f"target_{part}"]
        (tmp_path / f"{part}.txt").write_text("\n".join(map(str, index)))
        target[part] = {"dataset": dataset, "split": pool, "index": f"{part}.txt"}
        drawn = pools[pool].subset(splits[f"shadow_{part}"])
        images, labels = drawn.images.numpy(), drawn.labels.numpy()
        assert images.dtype == np.uint8  # the pixels as the run read them, not rescaled
        np.savez(tmp_path / f"shadow_{part}.npz", images=images, labels=labels)
        shadow[part] = {"npz": f"shadow_{part}.npz"}
    spec = get_source(dataset)
    config = {
        "name": "cross-path",
        "target": {
            "factory": "mistrust.models:create_model",
            "factory_args": {
                k: meta[k] for k in ("arch", "channels", "num_classes", "size", "width")
            },
            "weights": str(study / "models/base/target.pt"),
            **target,
        },
        "shadow": {"source": "checkpoint", "weights": str(study / "models/base/shadow.pt")}
        | shadow,
        "preprocess": {
            "size": meta["size"],
            "channels": meta["channels"],
            "mean": list(spec.mean),
            "std": list(spec.std),
        },
        **{k: cfg[k] for k in SHARED_SECTIONS},
    }
    run = _rows(study / "results.csv")
    config["eval"] = {**config["eval"], "iid_sets": _iid_sets(run)}
    _assert_same(run, _audit(config, tmp_path), missing=set())
    _assert_same_scores(study / "scores", tmp_path / "run" / "scores")


def test_logits_audit_gives_the_run_s_rows(study: Path, tmp_path: Path) -> None:
    """Door 2: the run's cached outputs as files. No inputs, so no blind baseline: its
    rows are missing, and each verdict is the one the run's other rows give without them."""
    _assert_logits_door(study, tmp_path, {})


def _assert_logits_door(study: Path, tmp_path: Path, extra: dict) -> None:
    """Audit ``study``'s cached outputs as files (with the config sections ``extra``) and
    compare its rows and per-sample scores with the run's."""
    cfg = _config(study)
    files: dict[str, dict[str, str]] = {"target": {}, "shadow": {}}
    for role, parts in files.items():
        for part in PARTS:
            logits, labels = _part(study, "base", role, part)
            np.savez(tmp_path / f"{role}_{part}.npz", logits=logits, labels=labels)
            parts[part] = f"{role}_{part}.npz"
    sets = [s for s in cfg["eval"]["sets"] if s != "original"]
    out = study / "outputs" / "base" / "target"
    config = {
        "name": "cross-path",
        "logits": {**files, "sets": {s: str(out / f"{s}.npz") for s in sets}},
        **{k: cfg[k] for k in SHARED_SECTIONS},
        **extra,
    }
    run = _rows(study / "results.csv")
    iid = _iid_sets(run)
    assert iid == ["original"]  # digits: one pool, split here
    config["eval"] = {**config["eval"], "iid_sets": iid}
    missing = {k for k in run if k[3] in BASELINE_ROWS}
    assert {k[3] for k in missing} == BASELINE_ROWS
    door = _audit(config, tmp_path)
    # off an i.i.d. set the leakage p-value is the larger of the attack's against chance and
    # against the baseline (docs/CHECKS.md); without the baseline it is the first alone, so
    # no larger, and Holm's adjustment is monotone in every p-value
    moved = {k for k in run if k[3] in P_BASELINE and k[2] not in iid}
    assert moved and all(door[k] <= run[k] + TOLERANCE for k in moved)
    # each verdict is the one the door's own rows give (docs/CHECKS.md)
    want = {k: door[k] if k in moved else x for k, x in run.items()}
    for v, a, ds, metric in door:
        if metric == "verdict":
            want[(v, a, ds, metric)] = verdict_of_rows(door, v, a, ds).code
    _assert_same(want, door, missing=missing)
    _assert_same_scores(study / "scores", tmp_path / "run" / "scores")


#: the reference attacks' study: the study above, base alone, with four reference models
REFERENCE = ["lira-online", "lira-offline", "rmia-online", "rmia-offline"]
REFERENCE_STUDY = [
    *STUDY,
    "--set",
    "variants.names=[base]",
    "--set",
    "eval.sets=[original, permuted, scaled, noise]",
    "--set",
    f"reference.attacks=[{', '.join(REFERENCE)}]",
    "--set",
    "reference.n_models=4",
    "--set",
    "reference.z_size=30",
    "--set",
    "reference.fixed_variance=true",
]


@pytest.fixture(scope="module")
def reference_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run with LiRA and RMIA beside the score-based attacks (console, as ``study``)."""
    out = tmp_path_factory.mktemp("cross_path_reference") / "run"
    cmd = [sys.executable, "-m", "mistrust.cli", "run", *REFERENCE_STUDY, "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _reference_files(run: Path, where: Path) -> dict:
    """The run's reference population and its models' outputs in the audit's layout
    (docs/REFERENCE_AUDIT.md); the ``reference`` section that names them."""
    cfg, rows = _config(run), _rows(run / "results.csv")
    pop = load_npz(run / "reference_keep.npz")
    pools = {
        k: load_source(cfg["data"]["dataset"], split=s) for k, s in ((0, "train"), (1, "test"))
    }
    labels = np.array(
        [
            int(pools[int(s)].labels[int(i)])
            for s, i in zip(pop["source"], pop["index"], strict=True)
        ]
    )
    keep = {"keep": pop["keep"], "labels": labels, "z": pop["z"]}
    sets = [s for s in cfg["eval"]["sets"] if s != "original"]
    ref = run / "outputs" / "reference"
    logits = {
        key: np.stack([load_npz(ref / str(m) / f"{key}.npz")["logits"] for m in range(4)])
        for key in ["population", *sets]
    }
    logits["target_z"] = load_npz(ref / "target" / "z.npz")["logits"]
    for s in sets:
        # the run scores a set of copies of the non-members with their IN / OUT models
        if rows[("base", "lira-online", s, "offline_on_ood")] == 0.0:
            keep[f"source_{s}"] = np.arange(len(logits[s][0]))
    np.savez(where / "keep.npz", **keep)
    np.savez(where / "reference.npz", **logits)
    r = cfg["reference"]
    options = {k: r[k] for k in ("attacks", "fixed_variance", "rmia_a", "rmia_gamma")}
    return {"reference": {**options, "keep": "keep.npz", "logits": "reference.npz"}}


def test_reference_logits_audit_gives_the_run_s_rows(reference_study: Path, tmp_path: Path) -> None:
    """Door 2 with LiRA and RMIA: the reference models' outputs and keep matrix as files
    give the run's reference rows and scores (and the Holm family's verdicts) exactly."""
    extra = _reference_files(reference_study, tmp_path)
    _assert_logits_door(reference_study, tmp_path, extra)
    door = _rows(tmp_path / "run" / "results.csv")
    assert {k[1] for k in door} >= set(REFERENCE)
    assert (tmp_path / "run" / "scores" / "base" / "rmia-online" / "scaled.npz").is_file()


def test_array_audit_gives_the_run_s_rows(study: Path, tmp_path: Path) -> None:
    """Door 3: ``mistrust.audit`` on the cached outputs of each variant, with the run's
    blind-baseline scores, members first as in the run."""
    cfg = _config(study)
    acfg, sets = cfg["attacks"], cfg["eval"]["sets"]
    options = ("top_k", "class_thresholds", "strict_threshold", "score_precision")
    options += ("salem_score", "aupr", "salem_rows")
    door: dict[Key, float] = {}
    for variant in VARIANTS:
        out = study / "outputs" / variant / "target"
        result = mistrust.audit(
            shadow=_arrays(study, variant, "shadow"),
            target=_arrays(study, variant, "target"),
            eval_sets={
                s: (load_npz(out / f"{s}.npz")["logits"], load_npz(out / f"{s}.npz")["labels"])
                for s in sets
                if s != "original"
            },
            attacks=acfg["names"],
            seed=cfg["seed"],
            variant=variant,
            baseline_scores={s: load_npz(study / "baseline" / f"{s}.npz")["score"] for s in sets},
            iid_sets=_iid_sets(_rows(study / "results.csv")),
            **{k: acfg[k] for k in options},
        )
        door |= _rows(result.to_csv(tmp_path / f"{variant}.csv"))
        result.save_scores(tmp_path / "scores" / variant)
    _assert_same(_rows(study / "results.csv"), door, missing=set())
    _assert_same_scores(study / "scores", tmp_path / "scores")
