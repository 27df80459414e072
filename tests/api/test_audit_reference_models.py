"""``mistrust audit`` with LiRA and RMIA on reference checkpoints (``reference.weights`` /
``reference.models`` beside a model audit, docs/REFERENCE_AUDIT.md): the same rows as
the same models' logits given as files, a rerun that reuses the logits, bad
checkpoints refused in one line."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from mistrust.cli import main

N_MEM, N_NON, N_EXTRA, M = 40, 40, 60, 4
A = N_MEM + N_NON
ATTACKS = ("lira-online", "lira-offline", "rmia-online", "rmia-offline")
FACTOR = 3.0  # eval.scale_factor: the scaled set is the non-members' inputs times this

NET = """
import torch


def make(num_classes: int = 10) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, num_classes)
    )
"""


def _x(images: np.ndarray) -> torch.Tensor:
    """The preprocessing of the config (size 8, one channel, no normalisation)."""
    return torch.from_numpy(images).float().div(255).unsqueeze(1)


def _train(x: torch.Tensor, y: torch.Tensor, seed: int, classes: int = 10) -> torch.nn.Module:
    import refckpt_net

    torch.manual_seed(seed)
    model = refckpt_net.make(classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):  # full batch: a few milliseconds
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A target MLP on 40 digits, four reference MLPs in pairs on halves of the 80
    audited digits and random halves of 60 further ones, saved as state dicts."""
    root = tmp_path_factory.mktemp("reference_models")
    (root / "refckpt_net.py").write_text(NET)
    sys.path.insert(0, str(root))
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.images))[: A + N_EXTRA]
    images = np.round(digits.images[order] * (255 / 16)).astype(np.uint8)
    labels = digits.target[order].astype(np.int64)
    x, y = _x(images), torch.from_numpy(labels)
    np.savez(root / "members.npz", images=images[:N_MEM], labels=labels[:N_MEM])
    np.savez(root / "nonmembers.npz", images=images[N_MEM:A], labels=labels[N_MEM:A])
    np.savez(root / "population.npz", images=images[A:], labels=labels[A:])
    torch.save(_train(x[:N_MEM], y[:N_MEM], 0).state_dict(), root / "target.pt")
    rng = np.random.default_rng(1)
    keep = np.zeros((M, A + N_EXTRA), bool)
    for m in range(0, M, 2):
        half = rng.permutation(A) < A // 2
        keep[m, :A], keep[m + 1, :A] = half, ~half
    keep[:, A:] = rng.random((M, N_EXTRA)) < 0.5
    for m in range(M):
        torch.save(_train(x[keep[m]], y[keep[m]], m + 1).state_dict(), root / f"ref{m}.pt")
    np.savez(
        root / "keep.npz",
        keep=keep,
        labels=labels,
        z=np.arange(A, A + N_EXTRA),
        source_scaled=np.arange(N_NON),
    )
    weights = ", ".join(f"ref{m}.pt" for m in range(M))
    (root / "audit.yaml").write_text(
        "name: refckpt\n"
        "target: {factory: 'refckpt_net:make', weights: target.pt, members: {npz: members.npz},"
        " nonmembers: {npz: nonmembers.npz}}\n"
        "preprocess: {size: 8, channels: 1}\n"
        f"eval: {{sets: [original, scaled], scale_factor: {FACTOR}, gallery_size: 2}}\n"
        "attacks: {names: [threshold]}\n"
        "reference:\n"
        f"  attacks: [{', '.join(ATTACKS)}]\n"
        "  keep: keep.npz\n"
        f"  weights: [{weights}]\n"
        "  population: population.npz\n"
        "  fixed_variance: true\n"
    )
    yield root
    sys.path.remove(str(root))


def _audit(config: Path, out: Path, *args: str) -> dict[tuple[str, ...], float]:
    argv = ["audit", str(config), "--out", str(out), "--quiet", "--no-report", *args]
    assert main(argv) == 0
    with open(out / "results.csv", newline="") as fh:
        return {tuple(r[:4]): float(r[4]) for r in list(csv.reader(fh))[1:]}


def _logits_layout(audit: Path, run: Path) -> Path:
    """The same reference models' logits, computed here, and the target's cached outputs,
    as files of an audit of outputs (docs/REFERENCE_AUDIT.md)."""
    import refckpt_net

    where = audit / "logits"
    where.mkdir(exist_ok=True)
    target = run / "outputs" / "base" / "target"
    for name, file in (("members", "train"), ("nonmembers", "test"), ("scaled", "scaled")):
        with np.load(target / f"{file}.npz") as f:
            np.savez(where / f"{name}.npz", logits=f["logits"], labels=f["labels"])
    arrays = [np.load(audit / f"{p}.npz") for p in ("members", "nonmembers", "population")]
    x = _x(np.concatenate([a["images"] for a in arrays]))
    population, scaled = [], []
    for m in range(M):
        model = refckpt_net.make()
        model.load_state_dict(torch.load(audit / f"ref{m}.pt"))
        with torch.inference_mode():
            population.append(model.eval()(x).numpy())
            scaled.append(model(x[N_MEM:A] * FACTOR).numpy())
    target_net = refckpt_net.make()
    target_net.load_state_dict(torch.load(audit / "target.pt"))
    with torch.inference_mode():
        target_z = target_net.eval()(x[A:]).numpy()
    np.savez(
        where / "reference.npz",
        population=np.stack(population),
        scaled=np.stack(scaled),
        target_z=target_z,
    )
    (where / "audit.yaml").write_text(
        "name: refckpt\n"
        "logits: {target: {members: members.npz, nonmembers: nonmembers.npz},"
        " sets: {scaled: scaled.npz}}\n"
        "eval: {gallery_size: 2}\n"
        "attacks: {names: [threshold]}\n"
        "reference:\n"
        f"  attacks: [{', '.join(ATTACKS)}]\n"
        "  keep: ../keep.npz\n"
        "  logits: reference.npz\n"
        "  fixed_variance: true\n"
    )
    return where / "audit.yaml"


def test_checkpoints_give_the_rows_of_their_logits(audit: Path, tmp_path: Path) -> None:
    """The two ways in agree: the checkpoints run by the audit and their logits computed
    here give the same LiRA and RMIA rows; a rerun reuses the cached logits."""
    run = tmp_path / "ckpt"
    rows = _audit(audit / "audit.yaml", run)
    door = _audit(_logits_layout(audit, run), tmp_path / "logits")
    ref = {k: v for k, v in rows.items() if k[1] in ATTACKS}
    assert {k[1] for k in ref} == set(ATTACKS) and {"original", "scaled"} <= {k[2] for k in ref}
    # the blind baseline reads the images, which an audit of outputs has not: its rows
    # (and the p-values measured against it) are the model audit's alone
    blind = ("baseline", "auroc_minus_baseline", "p_leakage")
    same = [k for k in ref if not k[3].startswith(blind)]
    assert {"auroc", "tpr_at_1fpr", "offline_on_ood"} <= {k[3] for k in same}
    for key in same:
        assert door[key] == ref[key] or np.isnan(door[key]) == np.isnan(ref[key]) == 1, key
    # higher score = member: the reference attacks find the target's members
    assert rows[("base", "lira-online", "original", "auroc")] > 0.6
    cached = run / "outputs" / "reference" / "0" / "population.npz"
    stamp = cached.stat().st_mtime_ns
    before = (run / "results.csv").read_bytes()
    _audit(audit / "audit.yaml", run)
    assert cached.stat().st_mtime_ns == stamp  # reused, not recomputed
    assert (run / "results.csv").read_bytes() == before
    # an edited checkpoint (here: the same weights saved again) is another input
    torch.save(torch.load(audit / "ref0.pt"), audit / "ref0.pt")
    _audit(audit / "audit.yaml", run)
    assert cached.stat().st_mtime_ns != stamp
    assert (run / "results.csv").read_bytes() == before


def _error(
    audit: Path, tmp_path: Path, capsys: pytest.CaptureFixture, *sets: str, config: str = ""
) -> str:
    args = [a for s in sets for a in ("--set", s)]
    out = tmp_path / f"err{len(list(tmp_path.glob('err*')))}"
    path = config or str(audit / "audit.yaml")
    code = main(["audit", path, "--out", str(out), "--quiet", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [line for line in err.splitlines() if not line.startswith("outputs: ")]
    assert len(lines) == 1 and lines[0].startswith("mistrust: error: "), err
    return lines[0]


def test_bad_checkpoints_one_line_exit_2(
    audit: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    err = _error(audit, tmp_path, capsys, "reference.weights=[ref0.pt, ref1.pt, ref2.pt]")
    assert "reference.weights: 3 file(s)" in err and "keeps 4 reference models" in err
    err = _error(audit, tmp_path, capsys, "reference.weights=[ref0.pt, nope.pt, ref2.pt, ref3.pt]")
    assert "nope.pt" in err
    x = torch.zeros(8, 1, 8, 8)
    five = _train(x, torch.arange(8) % 5, 0, classes=5)
    torch.save(five.state_dict(), tmp_path / "five.pt")
    five_list = ", ".join([str(tmp_path / "five.pt")] * M)
    err = _error(
        audit,
        tmp_path,
        capsys,
        f"reference.weights=[{five_list}]",
        "reference.factory_args.num_classes=5",
    )
    assert "reference.weights[0]" in err and "5 outputs, but the target has 10" in err
    err = _error(audit, tmp_path, capsys, "reference.logits=keep.npz")
    assert "reference.logits: an audit of a model runs the reference models" in err


def _trained_config(audit: Path, n_models: int = M) -> Path:
    """The audit of the fixture with reference models it trains itself (n_models)."""
    path = audit / f"train{n_models}.yaml"
    path.write_text(
        "name: reftrain\n"
        "target: {factory: 'refckpt_net:make', weights: target.pt, members: {npz: members.npz},"
        " nonmembers: {npz: nonmembers.npz}}\n"
        "preprocess: {size: 8, channels: 1}\n"
        f"eval: {{sets: [original, scaled], scale_factor: {FACTOR}, gallery_size: 2}}\n"
        "attacks: {names: [threshold]}\n"
        "train: {epochs: 2, batch_size: 16, lr: 0.01}\n"
        "reference:\n"
        f"  attacks: [{', '.join(ATTACKS)}]\n"
        f"  n_models: {n_models}\n"
        "  population: population.npz\n"
        "  fixed_variance: true\n"
    )
    return path


def test_trained_reference_models_are_audited_as_their_checkpoints(
    audit: Path, tmp_path: Path
) -> None:
    """reference.n_models: the audit draws the keep matrix (each audited row IN for
    exactly half of the models, in pairs), trains the models, and scores them as the
    same weights and keep given as checkpoints; a rerun reuses the models."""
    run = tmp_path / "trained"
    rows = _audit(_trained_config(audit), run)
    ref = {k: v for k, v in rows.items() if k[1] in ATTACKS}
    assert {k[1] for k in ref} == set(ATTACKS) and {"original", "scaled"} <= {k[2] for k in ref}
    verdicts = {(k[1], k[2]) for k in rows if k[3] == "verdict"}
    assert {(a, s) for a in ATTACKS for s in ("original", "scaled")} <= verdicts
    with np.load(run / "reference_keep.npz") as f:
        keep, labels, z = f["keep"], f["labels"], f["z"]
    assert keep.shape == (M, A + N_EXTRA) and keep.dtype == np.bool_
    assert (keep[0::2, :A] != keep[1::2, :A]).all()  # complementary pairs on the audited rows
    assert (keep[:, :A].sum(axis=0) == M // 2).all()  # each audited row IN for half
    assert (keep[:, :A].sum(axis=1) == A // 2).all()
    assert z.tolist() == list(range(A, A + N_EXTRA))  # RMIA's z: every further row
    digits = [
        np.load(audit / f"{p}.npz")["labels"] for p in ("members", "nonmembers", "population")
    ]
    assert labels.tolist() == np.concatenate(digits).tolist()
    # the same weights and keep, given as checkpoints, give the same rows
    weights = ", ".join(str(run / "models" / "reference" / f"{m}.pt") for m in range(M))
    given = _audit(
        audit / "audit.yaml",
        tmp_path / "given",
        "--set",
        f"reference.keep={run / 'reference_keep.npz'}",
        "--set",
        f"reference.weights=[{weights}]",
    )
    same = {k: v for k, v in given.items() if k[1] in ATTACKS}
    assert same.keys() == ref.keys()
    for key, value in ref.items():  # NaN: a rate no threshold reaches, on both sides
        assert same[key] == value or np.isnan(same[key]) == np.isnan(value) == 1, key
    # a rerun reuses the trained models and their logits: the same bytes
    model = run / "models" / "reference" / "0.pt"
    stamp = model.stat().st_mtime_ns
    before = (run / "results.csv").read_bytes()
    _audit(_trained_config(audit), run)
    assert model.stat().st_mtime_ns == stamp
    assert (run / "results.csv").read_bytes() == before
    # another recipe is another model: retrained, not reused
    _audit(_trained_config(audit), run, "--set", "train.lr=0.02")
    assert model.stat().st_mtime_ns != stamp
    # the same seed draws the same keep and trains the same models elsewhere
    _audit(_trained_config(audit), tmp_path / "again")
    assert (tmp_path / "again" / "results.csv").read_bytes() == before


def test_trained_reference_config_errors_one_line(
    audit: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    err = _error(audit, tmp_path, capsys, config=str(_trained_config(audit, 3)))
    assert "reference.n_models: must be even and at least 2" in err and "got 3" in err
    err = _error(audit, tmp_path, capsys, "reference.n_models=4")  # beside weights and keep
    assert "reference.n_models: the audit trains the reference models" in err
    assert "leave out reference.weights" in err
    err = _error(
        audit, tmp_path, capsys, "reference.population=null", config=str(_trained_config(audit))
    )
    assert "reference.population: RMIA takes its population samples z" in err
