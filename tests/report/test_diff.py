"""``mistrust diff``: two hand-made run directories (tiny ``results.csv`` files), every
margin worked out here, and the command line."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from mistrust.cli import main
from mistrust.present.tables.diff import Change, diff_rows, diff_runs
from mistrust.present.tables.model import read_attack_rows

HEADER = "variant,attack,dataset,metric,value\n"


def _cell(v: str, a: str, d: str, metric: str, x: float, low: float, high: float) -> str:
    return f"{v},{a},{d},{metric},{x}\n{v},{a},{d},{metric}_ci_low,{low}\n{v},{a},{d},{metric}_ci_high,{high}\n"


A = (
    _cell("base", "threshold", "original", "auroc", 0.60, 0.55, 0.65)
    + _cell("base", "threshold", "original", "fpr", 0.30, 0.26, 0.34)
    + _cell("base", "threshold", "original", "tpr", 0.90, 0.87, 0.93)
    + _cell("base", "threshold", "scaled", "tpr", 0.90, 0.87, 0.93)  # the same members
    + _cell("base", "threshold", "scaled", "fpr", 0.95, 0.90, 0.99)
    + "base,threshold,original,tpr_at_1fpr,\n"  # not resolved: no interval, not compared
    + "base,threshold,original,tpr_at_1fpr_ci_low,nan\nbase,threshold,original,tpr_at_1fpr_ci_high,nan\n"
    + "base,threshold,original,verdict,1.0\n"
    + "base,threshold,shadow,operating_score,0.5\n"
    + _cell("base", "loss", "original", "auroc", 0.6, 0.5, 0.7)
    + _cell("laplace", "threshold", "original", "auroc", 0.6, 0.5, 0.7)
)
B = (
    _cell("base", "threshold", "original", "auroc", 0.70, 0.66, 0.74)
    + _cell("base", "threshold", "original", "fpr", 0.36, 0.32, 0.40)
    + _cell("base", "threshold", "original", "tpr", 0.88, 0.85, 0.91)
    + _cell("base", "threshold", "scaled", "tpr", 0.88, 0.85, 0.91)
    + _cell("base", "threshold", "scaled", "fpr", 0.99, 0.97, 1.0)
    + "base,threshold,original,tpr_at_1fpr,0.1\n"
    + "base,threshold,original,tpr_at_1fpr_ci_low,0.05\nbase,threshold,original,tpr_at_1fpr_ci_high,0.15\n"
    + "base,threshold,original,verdict,0.0\n"
    + _cell("base", "threshold", "noise", "fpr", 0.5, 0.4, 0.6)
)


def _runs(tmp: Path) -> tuple[Path, Path]:
    for name, text in (("a", A), ("b", B)):
        (tmp / name).mkdir()
        (tmp / name / "results.csv").write_text(HEADER + text)
    return tmp / "a", tmp / "b"


def test_the_margin_by_hand() -> None:
    # up: A's upper half-width 0.05 and B's lower one 0.04; sqrt(0.05^2 + 0.04^2) = 0.0640
    c = Change("v", "a", "d", "auroc", 0.60, 0.55, 0.65, 0.70, 0.66, 0.74)
    assert c.margin == pytest.approx(math.sqrt(0.05**2 + 0.04**2)) and c.moved
    # asymmetric intervals: the half-widths that face each other, 0.04 and 0.02
    c = Change("v", "a", "d", "fpr", 0.95, 0.90, 0.99, 0.99, 0.97, 1.0)
    assert c.margin == pytest.approx(math.sqrt(0.04**2 + 0.02**2)) and not c.moved
    # down: A's lower half-width 0.03 and B's upper one 0.03
    c = Change("v", "a", "d", "tpr", 0.90, 0.87, 0.93, 0.88, 0.85, 0.91)
    assert c.margin == pytest.approx(math.sqrt(2) * 0.03) and not c.moved
    # overlapping intervals can still have moved: 0.06 > sqrt(2) * 0.04 = 0.0566
    assert Change("v", "a", "d", "fpr", 0.30, 0.26, 0.34, 0.36, 0.32, 0.40).moved


def test_what_moved_changed_and_is_only_in_one_run(tmp_path: Path) -> None:
    a, b = _runs(tmp_path)
    d = diff_rows(read_attack_rows(a), read_attack_rows(b))
    compared = [(c.dataset, c.metric) for c in d.changes]
    # the members' TPR once; the unresolved TPR at 1 % FPR and the threshold not at all
    assert compared == [("original", "auroc"), ("original", "fpr"), ("original", "tpr")] + [
        ("scaled", "fpr")
    ]
    assert [(c.dataset, c.metric) for c in d.moved] == [("original", "auroc"), ("original", "fpr")]
    assert d.verdicts == [("base", "threshold", "original", "leakage shown", "not shown")]
    assert d.only == {
        "a": {"variants": ["laplace"], "attacks": ["loss"], "sets": []},
        "b": {"variants": [], "attacks": [], "sets": ["noise"]},
    }


def test_files_and_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = _runs(tmp_path)
    assert main(["diff", str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"A = {a}, B = {b}: 4 values with a 95 % interval in both (auroc, tpr, fpr, "
        "tpr_at_1fpr, tpr_at_0.1fpr); 2 moved beyond their intervals, 1 verdicts changed.\n"
        f"Only in {a}: variants laplace; attacks loss\nOnly in {b}: sets noise\n"
    )
    assert "base / threshold / original / auroc    0.600  [0.550, 0.650]    0.700" in out
    assert "base / threshold / original  leakage shown  not shown" in out
    with open(tmp_path / "out" / "diff.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["dataset"], r["metric"], r["moved"]) for r in rows] == [
        ("original", "auroc", "1"),
        ("original", "fpr", "1"),
        ("original", "tpr", "0"),
        ("scaled", "fpr", "0"),
    ]
    assert float(rows[0]["margin"]) == pytest.approx(math.sqrt(0.05**2 + 0.04**2))
    md = (tmp_path / "out" / "diff.md").read_text()
    assert "| base / threshold / original / fpr | 0.300 | [0.260, 0.340] | 0.360 |" in md
    assert "## Verdicts that changed" in md
    # without --out, the files go into RUN_B
    text, written = diff_runs(a, b)
    assert written == [b / "diff.md", b / "diff.csv"] and text in out
    # a directory without results.csv: one line, exit 2
    assert main(["diff", str(a), str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mistrust: error: no results.csv in run directory")
