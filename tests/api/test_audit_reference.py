"""``mistrust audit`` with LiRA and RMIA on reference models' outputs from files
(``reference:``, docs/REFERENCE_AUDIT.md): the layout read, the sign, bad files refused
in one line."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mistrust.cli import main

C, M, N_MEM, N_NON, N_EXTRA = 5, 4, 30, 30, 40
A, P = N_MEM + N_NON, N_MEM + N_NON + N_EXTRA


def _logits(rng: np.random.Generator, labels: np.ndarray, margin: np.ndarray) -> np.ndarray:
    out = rng.normal(size=(len(labels), C))
    out[np.arange(len(labels)), labels] += margin
    return out.astype(np.float32)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A target more confident on its members (margin 4) than on its non-members (1);
    reference models likewise on the rows they trained on (keep)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, C, P)
    keep = np.zeros((M, P), bool)
    for m in range(0, M, 2):
        half = rng.permutation(A) < A // 2
        keep[m, :A], keep[m + 1, :A] = half, ~half
    keep[:, A:] = rng.random((M, N_EXTRA)) < 0.5
    ref = np.stack([_logits(rng, labels, np.where(keep[m], 4.0, 1.0)) for m in range(M)])
    z = np.arange(A, P)
    t_mem = _logits(rng, labels[:N_MEM], np.full(N_MEM, 4.0))
    t_non = _logits(rng, labels[N_MEM:A], np.full(N_NON, 1.0))
    scaled = 3 * t_non  # copies of the non-members
    np.savez(tmp_path / "t_mem.npz", logits=t_mem, labels=labels[:N_MEM])
    np.savez(tmp_path / "t_non.npz", logits=t_non, labels=labels[N_MEM:A])
    np.savez(tmp_path / "scaled.npz", logits=scaled, labels=labels[N_MEM:A])
    np.savez(tmp_path / "keep.npz", keep=keep, labels=labels, z=z, source_scaled=np.arange(N_NON))
    np.savez(
        tmp_path / "ref.npz",
        population=ref,
        scaled=3 * ref[:, N_MEM:A],
        target_z=_logits(rng, labels[z], np.ones(len(z))),
    )
    (tmp_path / "audit.yaml").write_text(
        "name: ref\n"
        "logits:\n"
        "  target: {members: t_mem.npz, nonmembers: t_non.npz}\n"
        "  sets: {scaled: scaled.npz}\n"
        "attacks: {names: [threshold]}\n"
        "reference:\n"
        "  attacks: [lira-online, lira-offline, rmia-online, rmia-offline]\n"
        "  keep: keep.npz\n"
        "  logits: ref.npz\n"
        "  fixed_variance: true\n"
    )
    return tmp_path


def _rows(run: Path) -> dict[tuple[str, str, str, str], float]:
    with open(run / "results.csv", newline="") as fh:
        return {tuple(r[:4]): float(r[4]) for r in list(csv.reader(fh))[1:]}


def test_reference_attacks_from_files_rank_members_higher(files: Path) -> None:
    assert (
        main(
            [
                "audit",
                str(files / "audit.yaml"),
                "--out",
                str(files / "run"),
                "--quiet",
                "--no-report",
            ]
        )
        == 0
    )
    rows = _rows(files / "run")
    for attack in ("lira-online", "lira-offline", "rmia-online", "rmia-offline"):
        for ds in ("original", "scaled"):
            # higher score = member: the members are the target's confident rows
            assert rows[("base", attack, ds, "auroc")] > 0.65, (attack, ds)
            assert ("base", attack, ds, "verdict") in rows
    # the scaled rows are copies of the non-members: online attacks run online there
    assert rows[("base", "lira-online", "scaled", "offline_on_ood")] == 0.0


def _error(files: Path, capsys: pytest.CaptureFixture, *extra: str) -> str:
    out = files / f"err{len(list(files.glob('err*')))}"
    code = main(["audit", str(files / "audit.yaml"), "--out", str(out), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    # the files are read once the target's outputs are cached: its progress line may come first
    lines = [line for line in err.splitlines() if not line.startswith("outputs: ")]
    assert len(lines) == 1 and lines[0].startswith("mistrust: error: "), err
    return lines[0]


def _rewrite(path: Path, **change: np.ndarray) -> None:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays.update(change)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


def test_bad_reference_files_one_line_exit_2(files: Path, capsys: pytest.CaptureFixture) -> None:
    assert "reference.keep: missing" in _error(files, capsys, "--set", "reference.keep=null")
    assert "unknown attack 'lira'" in _error(files, capsys, "--set", "reference.attacks=[lira]")
    err = _error(files, capsys, "--set", "logits.sets.population=scaled.npz")
    assert "'population' is an array of reference.logits" in err
    assert "nope.npz does not exist" in _error(files, capsys, "--set", "reference.keep=nope.npz")
    keep = np.load(files / "keep.npz")["keep"]
    ref = np.load(files / "ref.npz")["population"]
    _rewrite(files / "keep.npz", keep=keep.astype(np.int64))
    assert "keep must be a bool array" in _error(files, capsys)
    _rewrite(files / "keep.npz", keep=keep[:, : A - 1])
    assert "fewer than the target's 30 members and 30 non-members" in _error(files, capsys)
    every = keep.copy()
    every[:, N_MEM + 2] = True
    _rewrite(files / "keep.npz", keep=every)
    assert "audited row 32 (a non-member) is IN for every reference model" in _error(files, capsys)
    _rewrite(files / "keep.npz", keep=keep, labels=np.zeros(P, np.int64))
    assert "the target's files give" in _error(files, capsys)
    labels = np.r_[np.load(files / "t_mem.npz")["labels"], np.load(files / "t_non.npz")["labels"]]
    _rewrite(files / "keep.npz", labels=np.r_[labels, np.zeros(N_EXTRA, np.int64)], z=np.arange(5))
    assert "z must index rows 60...99" in _error(files, capsys)
    _rewrite(files / "keep.npz", z=np.arange(A, P))
    _rewrite(files / "ref.npz", population=ref[:, :-1])
    assert "population has shape (4, 99, 5), expected (4, 100, 5)" in _error(files, capsys)
    _rewrite(files / "ref.npz", population=ref, scaled=None)
    assert "no array 'scaled'" in _error(files, capsys)
