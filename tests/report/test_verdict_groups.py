"""The verdicts told together (``mistrust.present.tables.verdicts``), on the hand-made audit of
``test_check_tables``: which cells each rule decided, where they are and why, written out
here; the epsilon table; the console's lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_check_tables import _rows

from mistrust.present.results import RunResult
from mistrust.present.summary import print_summary
from mistrust.present.tables.formats import to_text
from mistrust.present.tables.verdicts import epsilon_table, reason_groups

CHANCE = "AUROC 0.45–0.52, not above chance (0.5)"


def test_one_group_per_label_and_rule_in_label_order() -> None:
    groups = reason_groups(_rows(), "base")
    assert [(g.label, g.rule, g.cells) for g in groups] == [
        ("leakage shown", "no baseline", [("threshold", "original")]),
        ("not shown", "chance", [("threshold", "scaled"), ("salem", "original"), ("salem", "noise")]),
        (
            "inconclusive",
            "degenerate",
            [("threshold", "noise"), ("loss", "original"), ("loss", "noise"), ("loss", "scaled")],
        ),
        ("inconclusive", "shift", [("salem", "scaled")]),
    ]  # fmt: skip
    assert [g.where for g in groups] == [
        "original (threshold)",
        "original (salem), noise (salem), scaled (threshold)",
        "original (loss), noise (all but salem), scaled (loss)",
        "scaled (salem)",
    ]
    assert [g.why for g in groups] == [
        "AUROC 0.80, above chance (Holm-adjusted p ≤ 0.004); blind baseline not run",
        CHANCE,  # the range of the three cells' AUROCs: 0.45, 0.52 and 0.50
        "degenerate attack: constant decisions, tied scores or inverted polarity",
        "the blind baseline, a classifier of the pixels alone, separates them from the "
        "members (AUROC 0.90; the attacks 0.80): distribution shift, membership neither "
        "shown nor ruled out",
    ]
    assert reason_groups(_rows(), "no such variant") == []


def test_every_attack_on_a_set_is_said_once() -> None:
    # the same three attacks, every one at chance on every set
    rows = [r for r in _rows() if r.attack == "salem" and r.dataset != "scaled"]
    rows += [r._replace(attack=a) for a in ("threshold", "loss") for r in rows]
    [group] = reason_groups(rows, "base")
    assert group.where == "original, noise (2 sets), every attack"
    assert group.why == "AUROC 0.50–0.52, not above chance (0.5)"


def test_epsilon_per_attack_with_its_verdict_and_auroc() -> None:
    t = epsilon_table(_rows(), "base")
    assert t is not None and t.rows == ["threshold", "loss", "salem"]  # plain: no checks
    assert t.cols == ["verdict", "AUROC", "epsilon >="]
    assert [t.cells[(a, "verdict")] for a in t.rows] == [
        "leakage shown",
        "inconclusive",
        "not shown",
    ]
    assert [t.cells[(a, "AUROC")] for a in t.rows] == [0.8, 0.4, 0.52]
    assert [t.cells[(a, "epsilon >=")] for a in t.rows] == [0.25] * 3
    assert t.note == (
        "on the original set, at the threshold fitted on the shadow model "
        "(delta 1e-05, 95 % Clopper-Pearson); docs/CHECKS.md"
    )
    assert epsilon_table([r for r in _rows() if r.metric != "epsilon_lower_bound"], "base") is None


def test_the_console_groups_the_verdicts_and_prints_epsilon(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    result = RunResult(tmp_path, attack_rows=_rows(), timings={"attacks": 1.0})
    print_summary(result, variants=["base"], attacks=["threshold"], report=False)
    out = capsys.readouterr().out
    assert (
        "\nVerdicts, variant 'base' (docs/CHECKS.md; every reason in report.html)\n"
        "  leakage shown  original (threshold): AUROC 0.80, above chance (Holm-adjusted p "
        "≤ 0.004); blind baseline not run\n"
        f"  not shown      original (salem), noise (salem), scaled (threshold): {CHANCE}\n"
    ) in out
    assert out.count("\n  inconclusive   ") == 2
    assert to_text(epsilon_table(_rows(), "base")) in out
    assert "Epsilon lower bound per attack (base): on the original set, at the threshold" in out
    assert "Time 1.0s (attacks 1.0s)" in out
    assert f"Results in {tmp_path}/ ()" in out  # nothing written: no file is named
