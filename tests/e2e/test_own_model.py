"""A model trained outside mistrust (examples/own_model/train.py), audited end to end."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mistrust.cli import main
from mistrust.io import load_npz

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own_model"
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(EXAMPLE), *(p for p in sys.path if p)]),
}
FAST = ["--set", "train.epochs=3"]  # the shadow: enough to run, the numbers mean nothing


def _python(*args: str, cwd: Path = EXAMPLE) -> str:
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.py's files in ``DIR/out`` and the example configs in ``DIR``."""
    root = tmp_path_factory.mktemp("own_model")
    _python(str(EXAMPLE / "train.py"), "--out", str(root / "out"), "--epochs", "15", "--n", "120")
    for name in ("audit.yaml", "logits.yaml", "reference.yaml"):
        shutil.copy(EXAMPLE / name, root / name)
    return root


def _transform(images: np.ndarray) -> torch.Tensor:
    """train.py's own transform, written out again."""
    return (torch.from_numpy(images).float().div(255).unsqueeze(1) - 0.5) / 0.5


@pytest.mark.slow
def test_cli_audits_the_exported_model_with_ood_sets_and_variants(trained: Path) -> None:
    run = trained / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "mistrust.cli", "audit", str(trained / "audit.yaml")]
        + ["--out", str(run), *FAST],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the shadow's training and the blind baseline are named in the time line
    assert re.search(
        r"\nTime [\d.]+s \(outputs [\d.]+s, shadow [\d.]+s, blind baseline ", proc.stdout
    )
    with open(run / "results.csv", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    assert {r[0] for r in rows} == {"base", "temperature-fit", "laplace"}
    assert {r[2] for r in rows} >= {"original", "permuted", "scaled", "unnormalized", "noise"}
    for rel in ("report.html", "tables.md", "config.yaml", "models/trained/shadow.pt"):
        assert (run / rel).is_file(), rel
    assert (run / "figures" / "gallery_scaled.png").is_file()
    assert "target.pt2 on members.npz · 3 variant(s)" in (run / "report.html").read_text()
    # the outputs are the model's own, through the preprocessing the config names:
    # recomputed here from the state dict with train.py's transform
    sys.path.insert(0, str(EXAMPLE))
    try:
        from digits_net import make_net
    finally:
        sys.path.remove(str(EXAMPLE))
    net = make_net()
    net.load_state_dict(torch.load(trained / "out" / "target_state.pt", weights_only=True))
    net.eval()
    members = load_npz(trained / "out" / "members.npz")
    nonmembers = load_npz(trained / "out" / "nonmembers.npz")
    base = run / "outputs" / "base" / "target"
    with torch.no_grad():
        want = net(_transform(members["images"])).numpy()
        scaled = net(_transform(nonmembers["images"]) * 255.0).numpy()  # eval.scale_factor
    np.testing.assert_allclose(load_npz(base / "train.npz")["logits"], want, atol=1e-4)
    np.testing.assert_allclose(load_npz(base / "scaled.npz")["logits"], scaled, rtol=1e-4)
    # features: the input of the last linear layer, so that layer maps them to the logits
    feats = torch.from_numpy(load_npz(base / "train.npz")["features"])
    with torch.no_grad():
        np.testing.assert_allclose(net.classifier(feats).numpy(), want, atol=1e-4)
    # the blind baseline saw the members, then each set's inputs as the model saw them
    from mistrust.checks.baseline import blind_scores, pixel_features

    x = torch.cat([_transform(members["images"]), _transform(nonmembers["images"]) * 255.0])
    is_member = np.arange(len(x)) < len(members["images"])
    np.testing.assert_allclose(
        load_npz(run / "baseline" / "scaled.npz")["score"],
        blind_scores(pixel_features(x), is_member, seed=_seed(trained)),
        atol=1e-6,
    )
    checked = {(r[0], r[2]) for r in rows if r[3] == "baseline_auroc"}
    assert {("base", ds) for ds in ("original", "permuted", "scaled", "unnormalized")} <= checked
    # a rerun reuses every output and gives the same bytes (its report: tests/report)
    first = (run / "results.csv").read_bytes()
    rerun = ["audit", str(trained / "audit.yaml"), "--out", str(run), *FAST, "--no-report"]
    assert main(rerun) == 0
    assert (run / "results.csv").read_bytes() == first


@pytest.mark.slow
def test_python_example_program_state_dict_and_logits_agree(trained: Path) -> None:
    out = _python(
        str(EXAMPLE / "audit_by_python.py"),
        "--config-dir",
        str(trained),
        "--out",
        str(trained / "py"),
        "--set",
        "train.epochs=3",
        "--set",
        "variants.names=[base]",
        "--set",
        "eval.sets=[original,scaled]",
    )
    table = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in out.splitlines()[1:]}
    assert set(table) == {"program", "state-dict", "logits"}
    # one model, three ways in: the .pt2 program and the state dict score alike
    np.testing.assert_allclose(table["program"], table["state-dict"], atol=1e-9)
    for rel in ("program", "state-dict", "logits"):
        assert (trained / "py" / rel / "report.html").is_file()


def _error(capsys: pytest.CaptureFixture, config: Path, out: Path, *args: str) -> str:
    out = out / str(len(list(out.glob("*")))) if out.exists() else out / "0"
    code = main(["audit", str(config), "--out", str(out), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("mistrust: error: "), err
    return err


def test_bad_model_inputs_one_line_exit_2(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    cfg, out = trained / "audit.yaml", tmp_path / "err"
    no_shadow = ["--set", "shadow.source=none", "--set", "variants.names=[base]"]
    no_shadow += ["--set", "eval.sets=[original]"]
    # a wrong path
    err = _error(capsys, cfg, out, *no_shadow, "--set", "target.model=nowhere.pt2")
    assert "nowhere.pt2 does not exist" in err
    # a state dict that does not fit the factory
    state = ["--set", "target.model=null", "--set", "target.factory=digits_net:make_net"]
    state += ["--set", f"target.weights={trained / 'out' / 'target_state.pt'}"]
    err = _error(capsys, cfg, out, *no_shadow, *state, "--set", "target.factory_args.num_classes=5")
    assert "does not fit the model of 'digits_net:make_net'" in err and "of another shape" in err
    # the same by the flags: --factory and --weights replace the config's target.model
    flags = [
        "--factory",
        "digits_net:make_net",
        "--weights",
        str(trained / "out" / "target_state.pt"),
    ]
    err = _error(capsys, cfg, out, *no_shadow, *flags, "--factory-arg", "num_classes=5")
    assert "does not fit the model of 'digits_net:make_net'" in err and "of another shape" in err
    # a file holding pickled objects, not a state dict
    torch.save({"net": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")
    err = _error(
        capsys, cfg, out, *no_shadow, *state[:4], "--weights", str(tmp_path / "pickled.pt")
    )
    assert "refusing to load" in err
    # a TorchScript (or any non-.pt2) file as the model
    err = _error(capsys, cfg, out, *no_shadow, "--model", str(tmp_path / "pickled.pt"))
    assert "torch.export program (.pt2)" in err
    # inputs of the wrong shape for the program
    err = _error(capsys, cfg, out, *no_shadow, "--set", "preprocess.size=16")
    assert "takes inputs of shape (1, 8, 8)" in err
    # labels beyond the model's output width
    members = load_npz(trained / "out" / "members.npz")
    np.savez(tmp_path / "wide.npz", images=members["images"], labels=members["labels"] + 10)
    err = _error(
        capsys, cfg, out, *no_shadow, "--set", f"target.members.npz={tmp_path / 'wide.npz'}"
    )
    assert "the model has 10 outputs but a label is" in err
    # ... also where a shadow would train on them (the shadow classifies the target's classes)
    shadow = load_npz(trained / "out" / "shadow_members.npz")
    np.savez(tmp_path / "wide_s.npz", images=shadow["images"], labels=shadow["labels"] + 10)
    err = _error(capsys, cfg, out, "--set", f"shadow.members.npz={tmp_path / 'wide_s.npz'}", *FAST)
    assert "shadow.members: the model has 10 outputs but a label is 19" in err
    # a -1 among given labels: a mistake, never read as "no label"
    labels = members["labels"].copy()
    labels[5] = -1
    np.savez(tmp_path / "neg.npz", images=members["images"], labels=labels)
    err = _error(
        capsys, cfg, out, *no_shadow, "--set", f"target.members.npz={tmp_path / 'neg.npz'}"
    )
    assert "neg.npz: a label is -1 (sample 5)" in err
    # image arrays of a shape that is no image
    np.savez(tmp_path / "flat.npz", images=np.zeros((5, 64), np.uint8))
    err = _error(
        capsys, cfg, out, *no_shadow, "--set", f"target.members.npz={tmp_path / 'flat.npz'}"
    )
    assert "'images' must be" in err
    # a shadow trained on the target's members
    err = _error(
        capsys, cfg, out, "--set", f"shadow.members.npz={trained / 'out' / 'members.npz'}", *FAST
    )
    assert "also target members" in err
    # a shadow loaded from a checkpoint, its non-members the target's
    ckpt = ["--set", "shadow.source=checkpoint", "--set", "shadow.factory=null"]
    ckpt += ["--set", f"shadow.model={trained / 'out' / 'target.pt2'}"]
    ckpt += ["--set", f"shadow.nonmembers.npz={trained / 'out' / 'nonmembers.npz'}"]
    err = _error(capsys, cfg, out, *ckpt)
    assert "shadow.nonmembers: 120 of its 120 images are also target non-members" in err
    # half a normalisation: no std of 1 stands in for the missing one
    err = _error(capsys, cfg, out, *no_shadow, "--set", "preprocess.std=[]")
    assert "preprocess.mean is given without preprocess.std" in err
    # the last layer named wrong
    err = _error(capsys, cfg, out, *no_shadow, "--set", "target.last_layer=head")
    assert "no linear layer 'head'" in err and "classifier" in err


# the target alone (its state dict: quicker to load than the program) on its members and
# non-members, and on sets that train nothing: seconds
ONE_MODEL = ["--set", "shadow.source=none", "--set", "variants.names=[base]", "--no-report"]
ONE_MODEL += ["--set", "eval.gallery_size=0", "--set", "target.model=null"]
ONE_MODEL += ["--set", "target.factory=digits_net:make_net"]


def _net() -> torch.nn.Module:
    """train.py's network, for the state dict it saved."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        from digits_net import make_net
    finally:
        sys.path.remove(str(EXAMPLE))
    return make_net().eval()


def _audit(trained: Path, run: Path, data: dict[str, Path], *args: str) -> Path:
    """``mistrust audit`` of the target (no shadow) on ``data`` (``members`` / ``nonmembers``
    .npz files); the run directory."""
    files = [f"--set=target.{part}.npz={path}" for part, path in data.items()]
    files.append(f"--set=target.weights={trained / 'out' / 'target_state.pt'}")
    assert main(["audit", str(trained / "audit.yaml"), "--out", str(run), *ONE_MODEL, *files]) == 0
    return run


def _model_logits(trained: Path, unit: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """train.py's model applied directly to pixels in [0, 1], with its normalisation (the
    normalised tensor times ``scale``, as the ``scaled`` set)."""
    net = _net()
    net.load_state_dict(torch.load(trained / "out" / "target_state.pt", weights_only=True))
    with torch.no_grad():
        return net((torch.from_numpy(unit).unsqueeze(1) - 0.5) / 0.5 * scale).numpy()


def _metrics(run: Path) -> dict[tuple[str, str], float]:
    with open(run / "model_metrics.csv", newline="") as fh:
        return {(r[2], r[3]): float(r[4]) for r in list(csv.reader(fh))[1:] if r[1] == "target"}


def test_float_images_reach_the_model_unrounded(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    parts = {k: load_npz(trained / "out" / f"{k}.npz") for k in ("members", "nonmembers")}
    uint8 = _audit(trained, tmp_path / "uint8", {}, "--set", "eval.sets=[original]")
    # the same pixels as float32 k / 255: the same model inputs, so the same logits (bit
    # for bit), rows and model metrics as the uint8 arrays
    for k, d in parts.items():
        unit = d["images"].astype(np.float32) / np.float32(255)
        np.savez(tmp_path / f"{k}_f32.npz", images=unit, labels=d["labels"])
    f32 = {k: tmp_path / f"{k}_f32.npz" for k in parts}
    same = _audit(trained, tmp_path / "f32", f32, "--set", "eval.sets=[original]")
    for split in ("train", "test"):
        a = load_npz(uint8 / "outputs" / "base" / "target" / f"{split}.npz")["logits"]
        assert np.array_equal(
            load_npz(same / "outputs" / "base" / "target" / f"{split}.npz")["logits"], a
        )
    assert (same / "results.csv").read_bytes() == (uint8 / "results.csv").read_bytes()
    assert (same / "model_metrics.csv").read_bytes() == (uint8 / "model_metrics.csv").read_bytes()
    # floats off the 8-bit grid reach the model as they are, perturbed sets included: its
    # logits applied directly
    rng = np.random.default_rng(0)
    units = {}
    for k, d in parts.items():
        jitter = rng.uniform(-0.45, 0.45, d["images"].shape) / 255
        units[k] = np.clip(d["images"] / 255 + jitter, 0, 1).astype(np.float32)
        np.savez(tmp_path / f"{k}_off.npz", images=units[k], labels=d["labels"])
    off_files = {k: tmp_path / f"{k}_off.npz" for k in parts}
    off = _audit(trained, tmp_path / "off", off_files, "--set", "eval.sets=[original,scaled]")
    scaled = load_npz(off / "outputs" / "base" / "target" / "scaled.npz")["logits"]
    want = _model_logits(trained, units["nonmembers"], scale=255.0)  # eval.scale_factor
    np.testing.assert_allclose(scaled, want, rtol=1e-4)
    for k, split in (("members", "train"), ("nonmembers", "test")):
        want = _model_logits(trained, units[k])
        got = load_npz(off / "outputs" / "base" / "target" / f"{split}.npz")["logits"]
        np.testing.assert_allclose(got, want, atol=1e-5)
        # rounded to 8 bits, the inputs would have moved the logits well beyond that
        rounded = _model_logits(trained, np.round(units[k] * 255).astype(np.float32) / 255)
        assert np.abs(rounded - want).max() > 1e-3
        # accuracy counted from those logits
        acc = (want.argmax(1) == parts[k]["labels"]).mean()
        assert _metrics(off)[(split, "accuracy")] == pytest.approx(acc, abs=1e-12)


def test_unlabelled_images_take_the_predicted_class(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # members and non-members without labels against the same images labelled with the
    # model's predicted class (computed here from the state dict)
    monkeypatch.syspath_prepend(str(EXAMPLE))
    sets = ["--set", "eval.sets=[original,scaled]"]
    runs = {}
    for kind in ("unlabelled", "predicted"):
        data = {}
        for part in ("members", "nonmembers"):
            images = load_npz(trained / "out" / f"{part}.npz")["images"]
            predicted = _model_logits(trained, images.astype(np.float32) / 255).argmax(1)
            extra = {"labels": predicted} if kind == "predicted" else {}
            data[part] = tmp_path / f"{part}_{kind}.npz"
            np.savez(data[part], images=images, **extra)
        runs[kind] = _audit(trained, tmp_path / kind, data, *sets)
    # the attacks took the same labels, the scaled copies their source's: the same rows
    want = (runs["predicted"] / "results.csv").read_bytes()
    assert (runs["unlabelled"] / "results.csv").read_bytes() == want
    # the model metrics that need true labels are left out, the others agree
    unlabelled, predicted = _metrics(runs["unlabelled"]), _metrics(runs["predicted"])
    assert ("train", "accuracy") not in unlabelled and predicted[("train", "accuracy")] == 1.0
    assert unlabelled and all(predicted[k] == v for k, v in unlabelled.items())


def _seed(trained: Path) -> int:
    import yaml

    return int(yaml.safe_load((trained / "run" / "config.yaml").read_text())["seed"])


@pytest.mark.slow
def test_reference_example_audits_lira_and_rmia_from_files(trained: Path) -> None:
    """train_reference.py's reference models (two, two epochs: enough to run) and
    reference.yaml: every reference attack on every set, online on the scaled copies."""
    out = str(trained / "out")
    _python(str(EXAMPLE / "train_reference.py"), "--out", out, "--models", "2", "--epochs", "2")
    run = trained / "run-reference"
    args = ["audit", str(trained / "reference.yaml"), "--out", str(run), "--no-report"]
    assert main([*args, "--quiet"]) == 0
    with open(run / "results.csv", newline="") as fh:
        rows = {(r[1], r[2], r[3]): float(r[4]) for r in list(csv.reader(fh))[1:]}
    for attack in ("lira-online", "lira-offline", "rmia-online", "rmia-offline"):
        for ds in ("original", "scaled"):
            assert 0.0 <= rows[(attack, ds, "auroc")] <= 1.0
            assert (attack, ds, "verdict") in rows
    assert rows[("rmia-online", "scaled", "offline_on_ood")] == 0.0  # source_scaled
