"""``mistrust audit`` of a model that claims a DP guarantee (``target.dp_epsilon``): every
epsilon lower bound is checked against it, with rows, the privacy table and a verdict."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mistrust.cli import main


def _logits(n: int, margin: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), labels] += margin
    return logits, labels


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Members far more confident than non-members: an attack certifies epsilon > 1."""
    for name, margin, seed in (
        ("t_mem", 12, 1),
        ("t_non", 0, 2),
        ("s_mem", 12, 3),
        ("s_non", 0, 4),
    ):
        logits, labels = _logits(300, margin, seed)
        np.savez(tmp_path / f"{name}.npz", logits=logits, labels=labels)
    return tmp_path


def _config(files: Path, target: str) -> Path:
    path = files / "audit.yaml"
    path.write_text(
        "logits:\n"
        "  target: {members: t_mem.npz, nonmembers: t_non.npz}\n"
        "  shadow: {members: s_mem.npz, nonmembers: s_non.npz}\n"
        f"target: {target}\n"
        "attacks: {names: [threshold, loss]}\n"
        "variants: {names: [base, temperature]}\n"
    )
    return path


def _rows(path: Path) -> dict[tuple[str, ...], float]:
    with open(path, newline="") as fh:
        return {tuple(r[:4]): float(r[4]) for r in list(csv.reader(fh))[1:]}


def test_a_claim_below_the_empirical_bound_is_flagged(files: Path, capsys) -> None:
    run = files / "run"
    assert (
        main(
            ["audit", str(_config(files, "{dp_epsilon: 0.5, dp_delta: 1.0e-5}")), "--out", str(run)]
        )
        == 0
    )
    rows, model = _rows(run / "results.csv"), _rows(run / "model_metrics.csv")
    for v in ("base", "temperature"):  # post-processing keeps the guarantee: checked too
        for a in ("threshold", "loss"):
            bound = rows[(v, a, "original", "epsilon_lower_bound")]
            assert bound > 0.5
            assert rows[(v, a, "original", "flag_dp_violation")] == 1.0
        assert model[(v, "target", "train", "dp_epsilon")] == 0.5
        assert model[(v, "target", "train", "dp_delta")] == 1e-5
    out = capsys.readouterr().out
    assert "DP violation: base: the empirical epsilon lower bound exceeds" in out
    assert "a bug in the private training or in the audit is likely" in out
    report = (run / "report.md").read_text()
    assert "Privacy: the accountant's epsilon" in report and "**DP violation**" in report


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{dp_epsilon: -1}", "target.dp_epsilon must be a positive number"),
        ("{dp_delta: 1.0e-5}", "target.dp_delta needs target.dp_epsilon"),
    ],
)
def test_bad_claims_are_one_line_errors(files: Path, capsys, target: str, message: str) -> None:
    assert main(["audit", str(_config(files, target)), "--out", str(files / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mistrust: error:") and message in err and "\n" not in err


@pytest.mark.parametrize("name", ["dp-sgd", "dp-sgd-eps2"])
def test_an_audit_refuses_a_dp_variant_in_one_line(files: Path, capsys, name: str) -> None:
    """A DP-SGD variant trains models of its own; the family is refused before expansion."""
    config = str(_config(files, "{dp_epsilon: 1.0}"))
    args = ["audit", config, "--out", str(files / "run"), "--set", f"variants.names=[base, {name}]"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mistrust: error:") and "\n" not in err
    assert f"variants.names: {name} trains its own models" in err
