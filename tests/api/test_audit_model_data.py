"""``mistrust.run_audit`` on a factory + state dict with data from folders, arrays and the
registry, a shadow checkpoint, and the post-hoc variants on the model's last layer."""

from __future__ import annotations

import copy
import csv
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mistrust
from mistrust.config import ConfigError
from mistrust.config.own import load_audit_config
from mistrust.errors import DataError, InputError
from mistrust.io import load_npz
from mistrust.models import create_model

FACTORY = "mistrust.models:create_model"
ARGS = {"arch": "mlp", "channels": 1, "num_classes": 10, "size": 8, "width": 16}


def _digits(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)[offset : offset + n]
    return images, d.target[offset : offset + n].astype(np.int64)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, dict]:
    for seed, name in ((0, "target.pt"), (1, "shadow.pt")):
        torch.manual_seed(seed)
        torch.save(create_model(**ARGS).state_dict(), tmp_path / name)
    images, labels = _digits(60, 0)  # members: one sub-folder per class
    for i, (im, y) in enumerate(zip(images, labels, strict=True)):
        (tmp_path / "members" / f"{y:02d}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(im, mode="L").save(tmp_path / "members" / f"{y:02d}" / f"{i:03d}.png")
    images, labels = _digits(50, 100)  # non-members: flat, with a labels file
    (tmp_path / "nonmembers").mkdir()
    rows = ["file,label"]
    for i, (im, y) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(im, mode="L").save(tmp_path / "nonmembers" / f"{i:03d}.png")
        rows.append(f"{i:03d}.png,{y}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    images, labels = _digits(40, 200)
    np.savez(tmp_path / "shadow_members.npz", images=images, labels=labels)
    (tmp_path / "cal.txt").write_text(" ".join(map(str, range(30))))
    (tmp_path / "shadow_non.txt").write_text(" ".join(map(str, range(30, 70))))
    (tmp_path / "shadow_cal.txt").write_text(" ".join(map(str, range(70, 90))))
    cfg = {
        "name": "folders",
        "target": {
            "factory": FACTORY,
            "factory_args": ARGS,
            "weights": str(tmp_path / "target.pt"),
            "members": {"folder": str(tmp_path / "members")},
            "nonmembers": {
                "folder": str(tmp_path / "nonmembers"),
                "labels": str(tmp_path / "labels.csv"),
            },
            "calibration": {
                "dataset": "digits",
                "split": "test",
                "index": str(tmp_path / "cal.txt"),
            },
        },
        "preprocess": {"size": 8, "channels": 1, "mean": [0.5], "std": [0.25]},
        "shadow": {
            "source": "checkpoint",
            "weights": str(tmp_path / "shadow.pt"),  # target.factory builds it
            "members": {"npz": str(tmp_path / "shadow_members.npz")},
            "nonmembers": {
                "dataset": "digits",
                "split": "test",
                "index": str(tmp_path / "shadow_non.txt"),
            },
            "calibration": {
                "dataset": "digits",
                "split": "test",
                "index": str(tmp_path / "shadow_cal.txt"),
            },
        },
        "variants": {
            "names": ["base", "temperature-fit", "laplace"],
            "calibration_set": "held-out",
            "laplace_grid": 3,
            "laplace_samples": 10,
        },
        "attacks": {"names": ["threshold", "salem"]},
        "eval": {
            "sets": ["original", "scaled", "mine"],
            "folders": {"mine": str(tmp_path / "nonmembers")},
        },
    }
    return tmp_path, cfg


def test_folders_arrays_registry_and_a_shadow_checkpoint(setup: tuple[Path, dict]) -> None:
    root, cfg = setup
    result = mistrust.run_audit(cfg, root / "run", report=False)
    # the members' outputs are the model's on the preprocessed folder images, by hand
    net = create_model(**ARGS)
    net.load_state_dict(torch.load(root / "target.pt", weights_only=True))
    net.eval()
    images, _ = _digits(60, 0)
    x = (torch.from_numpy(images).float().div(255).unsqueeze(1) - 0.5) / 0.25
    train = load_npz(root / "run/outputs/base/target/train.npz")
    order = np.argsort(_digits(60, 0)[1], kind="stable")  # folders list class by class
    with torch.no_grad():
        np.testing.assert_allclose(train["logits"], net(x[order]).numpy(), atol=1e-5)
        np.testing.assert_allclose(train["features"], net.features(x[order]).numpy(), atol=1e-5)
    assert train["labels"].tolist() == _digits(60, 0)[1][order].tolist()
    # non-members then calibration images; the calibration images are never scored
    assert len(load_npz(root / "run/outputs/base/target/test.npz")["labels"]) == 50 + 30
    assert result.value("base", "threshold", "original", "n_nonmembers") == 50
    assert result.value("base", "threshold", "mine", "n_nonmembers") == 50
    for v in ("temperature-fit", "laplace"):
        assert 0 <= result.value(v, "threshold", "scaled", "fpr") <= 1
    info = result.variant_info
    assert set(info["laplace"]) == {"target", "shadow"} and info["temperature-fit"]["shadow"]
    # the shadow's threshold was fitted: its operating point is a row
    assert np.isfinite(result.value("base", "threshold", "shadow", "operating_score"))
    with open(root / "run" / "results.csv", newline="") as fh:
        assert not any(r[3] == "no_shadow" for r in csv.reader(fh))


def test_shadow_rows_overlapping_the_targets_are_refused(setup: tuple[Path, dict]) -> None:
    root, cfg = setup
    (root / "a.txt").write_text("0 1 2 3 4 5 6 7 8 9")
    (root / "b.txt").write_text("9 10 11 12")
    cfg["target"]["members"] = {"dataset": "digits", "index": str(root / "a.txt")}
    cfg["shadow"] = {
        "source": "train",
        "members": {"dataset": "digits", "index": str(root / "b.txt")},
        "nonmembers": {"dataset": "digits", "split": "test", "index": str(root / "cal.txt")},
    }
    cfg["variants"] = {"names": ["base"]}
    with pytest.raises(DataError, match=r"1 rows of digits \(train\) are also target members"):
        mistrust.run_audit(cfg, root / "run", report=False)
    # the target's non-members are off limits too: rows 20..49 against 0..29 of the test split
    (root / "c.txt").write_text(" ".join(map(str, range(20, 50))))
    cfg["shadow"]["members"]["index"] = str(root / "shadow_non.txt")  # disjoint from a.txt
    cfg["target"]["nonmembers"] = {
        "dataset": "digits",
        "split": "test",
        "index": str(root / "c.txt"),
    }
    with pytest.raises(DataError, match=r"shadow.nonmembers: 10 rows of digits \(test\) are also "):
        mistrust.run_audit(cfg, root / "run", report=False)


def test_a_shadow_checkpoint_on_the_targets_images_is_refused(setup: tuple[Path, dict]) -> None:
    # a loaded shadow's threshold is fitted on its members and non-members as a trained
    # one's: the same images are refused, compared by their pixels
    root, cfg = setup
    images, labels = _digits(40, 130)  # 130..149 are target non-members (100..149)
    np.savez(root / "late.npz", images=images, labels=labels)
    late = {"npz": str(root / "late.npz")}
    cases = [
        (
            "members",
            {"folder": str(root / "members")},
            "members: 60 of its 60 images are also target members",
        ),
        ("members", late, "members: 20 of its 40 images are also target non-members"),
        ("nonmembers", late, "nonmembers: 20 of its 40 images are also target non-members"),
    ]
    for part, spec, message in cases:
        bad = copy.deepcopy(cfg)
        bad["shadow"][part] = spec
        with pytest.raises(DataError, match=f"shadow.{message} \\(identical pixels\\)"):
            mistrust.run_audit(bad, root / "run", report=False)


@pytest.mark.parametrize(
    ("preprocess", "message"),
    [
        ({"mean": [0.5]}, r"preprocess.mean is given without preprocess.std"),
        ({"std": [0.5]}, r"preprocess.std is given without preprocess.mean"),
        (
            {"channels": None, "mean": [0.5, 0.4], "std": [0.5]},
            r"mean has 2 values but .*std has 1",
        ),
        ({"mean": [0.5] * 3, "std": [0.5] * 3}, r"3 values for 1 channels"),
    ],
)
def test_preprocess_mean_and_std_are_given_together(preprocess: dict, message: str) -> None:
    # std 1 for a missing std (mean 0 for a missing mean) is not the model's transform
    cfg = {
        "target": {"model": "m.pt2", "members": {"npz": "a.npz"}, "nonmembers": {"npz": "b.npz"}},
        "preprocess": {"size": 8, "channels": 1, **preprocess},
    }
    with pytest.raises(ConfigError, match=message):
        load_audit_config(cfg)
    cfg["preprocess"] = {"size": 8, "channels": 1}  # neither: no normalisation
    assert load_audit_config(cfg).preprocess.std == []


NET = """from torch import nn


def make_net(width: int = 16) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))
"""


def test_an_edited_factory_retrains_the_shadow_and_recomputes_the_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # the factory's name and arguments stay; its code changes between two runs into one
    # directory, which must then end as a run into a fresh one
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # no .pyc older than the edit
    (tmp_path / "edited_net.py").write_text(NET)
    torch.manual_seed(0)
    linear = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)
    )
    torch.save(linear.state_dict(), tmp_path / "target.pt")  # fits ReLU and Tanh alike
    for name, offset in (("m", 0), ("n", 100), ("sm", 200), ("sn", 300)):
        images, labels = _digits(40, offset)
        np.savez(tmp_path / f"{name}.npz", images=images, labels=labels)
    cfg = {
        "target": {
            "factory": "edited_net:make_net",
            "weights": str(tmp_path / "target.pt"),
            "members": {"npz": str(tmp_path / "m.npz")},
            "nonmembers": {"npz": str(tmp_path / "n.npz")},
        },
        "preprocess": {"size": 8, "channels": 1},
        "shadow": {
            "source": "train",
            "members": {"npz": str(tmp_path / "sm.npz")},
            "nonmembers": {"npz": str(tmp_path / "sn.npz")},
        },
        "train": {"epochs": 2},
        "variants": {"names": ["base"]},
        "attacks": {"names": ["threshold"]},
        "eval": {"sets": ["original"], "gallery_size": 0},
    }

    def audit(out: Path) -> bytes:
        sys.modules.pop("edited_net", None)  # a new process imports the file as it is now
        mistrust.run_audit(cfg, out, report=False)
        return (out / "results.csv").read_bytes()

    first = audit(tmp_path / "run")
    (tmp_path / "edited_net.py").write_text(NET.replace("nn.ReLU()", "nn.Tanh()"))
    # this process still holds the old module: it would build the old model
    with pytest.raises(InputError, match=r"edited_net.py changed after this Python process"):
        mistrust.run_audit(cfg, tmp_path / "run", report=False)
    with caplog.at_level(logging.INFO, logger="mistrust"):
        again = audit(tmp_path / "run")
    assert again == audit(tmp_path / "fresh") != first
    assert "retraining the shadow, since the code of edited_net:make_net changed" in caplog.text
    assert "its factory's code or its data changed" in caplog.text
