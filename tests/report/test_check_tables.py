"""The trust-check tables, the verdict lines and the headline of a hand-made audit, every
cell, note and sentence written out here.

Three attacks carry checks: ``threshold`` shows leakage on the in-distribution set, is
constant on ``noise`` and at chance on ``scaled``; ``loss`` has inverted polarity (every
verdict degenerate) and tied scores on ``scaled``; ``salem`` is at chance in-distribution
and on ``scaled`` the blind baseline beats it (shift not ruled out: inconclusive). ``plain`` has no checks.
"""

from __future__ import annotations

import math

import pytest

from mistrust.present.tables import MEMBERS, Table
from mistrust.present.tables.build import auroc_table, build_tables, check_tables, flags_text
from mistrust.present.tables.findings import headline, verdict_lines
from mistrust.present.tables.model import lookup
from mistrust.rows import MetricRow

SETS = ("original", "noise", "scaled")
INCONCLUSIVE, NOT_SHOWN, LEAKAGE = -1.0, 0.0, 1.0
NAN = math.nan


def _cell(auroc, low, high, verdict, **more) -> dict[str, float]:
    base = {"tpr": 0.6, "fpr": 0.2, "flag_constant": 0.0, "flag_ties": 0.0}
    return (
        base
        | {"auroc": auroc, "auroc_ci_low": low, "auroc_ci_high": high}
        | more
        | {
            "tied_fraction": more.get("tied_fraction", 0.0),
            "p_leakage_holm": more.get("p_leakage_holm", 0.2),
            "iid_split": 0.0,
            "verdict": verdict,
        }
    )


def _in_distribution(**more) -> dict[str, float]:
    return {
        "baseline_auroc": NAN,
        "null_auroc": 0.5,
        "null_auroc_ci_low": 0.45,
        "null_auroc_ci_high": 0.55,
        "flag_null": 0.0,
        "flag_polarity": 0.0,
        "tpr_at_1fpr_ci_low": 0.1,
        "tpr_at_1fpr_ci_high": 0.3,
        "epsilon_lower_bound": 0.25,
        "min_resolvable_fpr": 0.005,
        "tpr_at_0.1fpr": 0.05,
        "tpr_at_1fpr": 0.2,
    } | more


SHIFT = {
    "baseline_auroc": 0.9,
    "baseline_auroc_ci_low": 0.85,
    "baseline_auroc_ci_high": 0.95,
    "auroc_minus_baseline": -0.1,
    "auroc_minus_baseline_ci_low": -0.2,
    "auroc_minus_baseline_ci_high": 0.0,
}
CELLS = {
    "threshold": {
        "original": _cell(
            0.8, 0.7, 0.9, LEAKAGE, p_leakage_holm=0.004, **_in_distribution(tpr_at_1fpr_ci_low=NAN)
        ),
        "noise": _cell(0.6, 0.55, 0.65, INCONCLUSIVE, fpr=1.0, flag_constant=1.0),
        "scaled": _cell(0.45, 0.4, 0.5, NOT_SHOWN),
    },
    "loss": {
        "original": _cell(
            0.4,
            0.35,
            0.45,
            INCONCLUSIVE,
            **_in_distribution(flag_polarity=1.0, tpr_at_1fpr_ci_high=NAN),
        ),
        "noise": _cell(0.7, 0.6, 0.8, INCONCLUSIVE),
        "scaled": _cell(0.6, 0.55, 0.65, INCONCLUSIVE, flag_ties=1.0, tied_fraction=0.75),
    },
    "salem": {
        "original": _cell(0.52, 0.48, 0.56, NOT_SHOWN, **_in_distribution()),
        "noise": _cell(0.5, 0.45, 0.5, NOT_SHOWN),
        "scaled": _cell(0.8, 0.7, 0.9, INCONCLUSIVE, **SHIFT),
    },
}


def _rows() -> list[MetricRow]:
    rows = [
        MetricRow("base", a, d, m, x) for a, sets in CELLS.items() for d, c in sets.items()
        for m, x in c.items()
    ]  # fmt: skip
    rows += [MetricRow("base", "plain", d, m, 0.5) for d in SETS for m in ("fpr", "auroc")]
    rows.append(MetricRow("base", "threshold", "shadow", "operating_score", 0.75))
    return rows


def _by_key(rows) -> dict[str, Table]:
    return {t.key: t for t in check_tables(rows, "base", 0)}


def test_in_distribution_checks_table_by_hand() -> None:
    t = _by_key(_rows())["checks_v0"]
    cols = [
        "AUROC",
        "AUROC CI low",
        "AUROC CI high",
        "null AUROC",
        "null CI low",
        "null CI high",
        "TPR@1%FPR CI low",
        "TPR@1%FPR CI high",
        "epsilon lower bound",
        "flags",
    ]  # no blind baseline AUROC: every value of it is NaN, but it is there: see below
    assert t.title == "Trust checks on the in-distribution set (base)"
    assert (t.rows, t.corner, t.shade, t.group) == (
        ["threshold", "loss", "salem"],
        "attack",
        "none",
        "base",
    )
    assert t.cols == cols[:3] + ["blind baseline AUROC"] + cols[3:]
    assert t.cells[("threshold", "TPR@1%FPR CI low")] == "n/r"  # NaN: 1 % not resolved
    assert t.cells[("threshold", "TPR@1%FPR CI high")] == 0.3
    assert t.cells[("loss", "TPR@1%FPR CI low")] == 0.1
    assert t.cells[("loss", "TPR@1%FPR CI high")] == "n/r"
    assert t.cells[("salem", "epsilon lower bound")] == 0.25
    assert (t.cells[("loss", "AUROC")], t.cells[("loss", "AUROC CI low")]) == (0.4, 0.35)
    assert t.cells[("salem", "null CI high")] == 0.55
    assert t.cells[("threshold", "flags")] == "constant (noise)"
    assert t.cells[("loss", "flags")] == "ties (scaled), polarity"
    assert t.cells[("salem", "flags")] == "none"
    assert t.note == (
        "AUROC CI: DeLong 95%; blind baseline: inputs only, no model; null: two halves "
        "of the non-members, 99% interval must hold 0.5; TPR@1%FPR CI: bootstrap; "
        "epsilon: certified by the shadow-fixed operating point (delta 1e-5, 95%); "
        "n/r: too few non-members to resolve 1% FPR"
    )
    assert len(t.cells) == 3 * len(t.cols)


def test_verdict_tables_by_hand() -> None:
    tables = _by_key(_rows())
    assert list(tables) == ["checks_v0", "verdicts_v0", "reasons_v0"]
    per_set = tables["verdicts_v0"]
    assert per_set.title == "Verdict per evaluation set (base)"
    assert (per_set.rows, per_set.cols) == (list(SETS), ["threshold", "loss", "salem"])
    assert (per_set.corner, per_set.shade, per_set.group) == ("set \\ attack", "none", "base")
    assert per_set.cells == {
        ("original", "threshold"): "leakage shown",
        ("noise", "threshold"): "inconclusive",
        ("scaled", "threshold"): "not shown",
        ("original", "loss"): "inconclusive",
        ("noise", "loss"): "inconclusive",
        ("scaled", "loss"): "inconclusive",
        ("original", "salem"): "not shown",
        ("noise", "salem"): "not shown",
        ("scaled", "salem"): "inconclusive",
    }
    assert per_set.note == (
        "leakage shown / not shown / inconclusive; the reasons are in the verdict table"
    )
    reasons = tables["reasons_v0"]
    assert reasons.title == "Verdict per attack (base)"
    assert (reasons.rows, reasons.cols) == (["threshold", "loss", "salem"], ["verdict", "reason"])
    assert (reasons.corner, reasons.shade, reasons.group) == ("attack", "none", "base")
    polarity = "inverted polarity: in-distribution AUROC 0.400 [0.350, 0.450]"
    assert reasons.cells == {
        ("threshold", "verdict"): "leakage shown",
        ("threshold", "reason"): (
            "AUROC 0.800 [0.700, 0.900] excludes chance (p 0.004); blind baseline not run (no inputs given)"
        ),
        ("loss", "verdict"): "inconclusive",
        ("loss", "reason"): f"degenerate attack: {polarity}",
        ("salem", "verdict"): "not shown",
        ("salem", "reason"): "AUROC 0.520 [0.480, 0.560] is not above chance (0.5)",
    }
    assert reasons.note == (
        "on the in-distribution set; docs/CHECKS.md says how the verdict is decided"
    )


def test_check_tables_only_for_attacks_and_sets_with_verdicts() -> None:
    rows = _rows()
    plain = [r for r in rows if r.attack == "plain"]
    assert check_tables(plain, "base", 0) == []
    assert check_tables(rows, "other", 3) == []
    # the first attack with a verdict decides the sets; a set without one is left out
    rows = [r for r in rows if not (r[1:3] == ("threshold", "noise") and r.metric == "verdict")]
    tables = {t.key: t for t in check_tables(rows, "base", 2)}
    assert list(tables) == ["checks_v2", "verdicts_v2", "reasons_v2"]
    assert tables["verdicts_v2"].rows == ["original", "scaled"]
    # without the in-distribution checks no verdict has a reason: no reasons table
    no_ind = [r for r in _rows() if not (r.dataset == "original" and r.metric == "auroc_ci_low")]
    assert [t.key for t in check_tables(no_ind, "base", 0)] == ["checks_v0", "verdicts_v0"]


def test_flags_name_their_sets_unless_only_in_distribution() -> None:
    val = lookup(_rows())
    assert flags_text(val, "base", "threshold") == "constant (noise)"
    assert flags_text(val, "base", "loss") == "ties (scaled), polarity"
    both = lookup([*_rows(), MetricRow("base", "salem", "original", "flag_null", 1.0)])
    assert flags_text(both, "base", "salem") == "null test"
    twice = lookup([*_rows(), MetricRow("base", "threshold", "scaled", "flag_constant", 1.0)])
    assert flags_text(twice, "base", "threshold") == "constant (noise, scaled)"
    assert flags_text(val, "base", "plain") == "none"


def test_fpr_and_auroc_tables_carry_the_flags_and_the_baseline() -> None:
    rows = _rows()
    fpr = next(t for t in build_tables(rows, []) if t.key == "fpr_v0")
    assert fpr.note == (
        "first row: TPR on the members; other rows: FPR on that set's non-members, at the "
        "shadow-calibrated threshold; flagged: threshold (constant (noise)), "
        "loss (ties (scaled), polarity)"
    )
    auroc = auroc_table(rows, "base", 1)
    assert (auroc.key, auroc.shade) == ("auroc_v1", "auroc")
    assert auroc.cols == ["threshold", "loss", "salem", "plain", "blind baseline"]
    # the baseline's value per set, the first one given (it sees no model)
    assert auroc.cells[("scaled", "blind baseline")] == 0.9
    assert math.isnan(auroc.cells[("original", "blind baseline")])
    assert ("noise", "blind baseline") not in auroc.cells
    assert auroc.note == (
        "below 0.5: the set's non-members look more like members than the members do; "
        "blind baseline: a classifier of the inputs alone, no model"
    )
    assert MEMBERS not in auroc.rows


def test_build_tables_and_their_default_keys() -> None:
    from mistrust.present.tables.build import fpr_table, operating_table, variant_fpr_table

    rows = _rows()
    assert [t.key for t in build_tables(rows, [])] == [
        "fpr_v0",
        "auroc_v0",
        "operating_v0",
        "checks_v0",
        "verdicts_v0",
        "reasons_v0",
    ]
    assert fpr_table(rows, "base").key == "fpr_v0"
    assert auroc_table(rows, "base").key == "auroc_v0"
    assert operating_table(rows, "base").key == "operating_v0"
    assert variant_fpr_table(rows, "loss").key == "fpr_a0"


def test_tables_of_a_variant_without_a_shadow() -> None:
    from mistrust.present.tables.build import NO_SHADOW_NOTE, fpr_table, operating_table

    rows = [*_rows(), MetricRow("solo", "loss", "original", "fpr", NAN)]
    rows += [MetricRow("solo", "loss", "shadow", "no_shadow", 1.0)]
    rows += [MetricRow("solo", "loss", "original", "auroc", 0.5)]
    for table in (fpr_table, operating_table):
        solo, base = table(rows, "solo", 1), table(rows, "base", 0)
        assert solo.missing == "no shadow" and solo.note.startswith(NO_SHADOW_NOTE + " ")
        assert base.missing == "" and not base.note.startswith(NO_SHADOW_NOTE)


def test_operating_table_marks_unresolved_rates() -> None:
    t = next(t for t in build_tables(_rows(), []) if t.key == "operating_v0")
    # min_resolvable_fpr 0.005: a TPR at 0.1 % FPR is not resolved, at 1 % it is
    assert t.cells[("threshold", "TPR@0.1%FPR")] == "n/r"
    assert t.cells[("threshold", "TPR@1%FPR")] == 0.2
    assert t.cells[("threshold", "threshold")] == 0.75
    assert t.note.endswith("; n/r: too few non-members to resolve that FPR")
    resolved = [r._replace(value=0.001) if r.metric == "min_resolvable_fpr" else r for r in _rows()]
    t = next(t for t in build_tables(resolved, []) if t.key == "operating_v0")
    assert t.cells[("threshold", "TPR@0.1%FPR")] == 0.05
    assert t.note.endswith("(results.csv: set shadow, metric operating_score)")


def test_verdict_lines_note_the_other_sets_worth_a_word() -> None:
    lines = verdict_lines(_rows())
    assert [(x.attack, x.label) for x in lines] == [
        ("threshold", "leakage shown"),
        ("loss", "inconclusive"),
        ("salem", "not shown"),
    ]
    threshold, loss, salem = lines
    assert threshold.reason == (
        "AUROC 0.800 [0.700, 0.900] excludes chance (p 0.004); blind baseline not run (no inputs given)"
    )
    assert threshold.notes == [
        ("noise", "inconclusive", "degenerate attack: constant decisions (TPR 0.600, FPR 1.000)"),
        ("scaled", "not shown", "AUROC 0.450 [0.400, 0.500] is not above chance (0.5)"),
    ]
    assert loss.notes == []  # every set inconclusive like the in-distribution one
    # a set the blind baseline separates is inconclusive, never blamed on shift alone
    assert [n[:2] for n in salem.notes] == [("scaled", "inconclusive")]
    assert salem.notes[0][2] == (
        "distribution shift not ruled out: the blind baseline separates the members from "
        "scaled without the model (AUROC 0.900 [0.850, 0.950]), at least as well as the "
        "attack (0.800; difference -0.100 [-0.200, +0.000]); membership is neither shown nor "
        "ruled out"
    )
    assert verdict_lines([]) == []
    # an attack without checks listed first; a set only the first attack has
    plain = [r for r in _rows() if r.attack == "plain"]
    gan = [
        MetricRow("base", "threshold", "gan", m, x)
        for m, x in _cell(0.6, 0.55, 0.65, INCONCLUSIVE, fpr=1.0, flag_constant=1.0).items()
    ]
    lines = verdict_lines([*plain, *_rows(), *gan])
    assert [x.attack for x in lines] == ["threshold", "loss", "salem"]
    assert [n[0] for n in lines[0].notes] == ["noise", "scaled", "gan"]
    assert [n[0] for n in lines[2].notes] == ["scaled"]
    second = [r._replace(variant="zz") for r in _rows()]
    assert verdict_lines([MetricRow("first", "plain", "original", "fpr", 0.1), *second]) == []


@pytest.mark.parametrize("with_base", [True, False])
def test_headline_sentences_word_for_word(with_base: bool) -> None:
    rows = [
        MetricRow("base", "loss", "original", "tpr", 0.625),
        MetricRow("base", "loss", "noise", "fpr", 0.75),
        MetricRow("base", "loss", "scaled", "fpr", 0.5),
    ]
    if with_base:
        rows.append(MetricRow("base", "loss", "original", "fpr", 0.25))
    html, text = headline(rows)
    tie = headline([*rows, MetricRow("base", "loss", "gan", "fpr", 0.75)])[1]
    assert tie.endswith("FPR 0.75 on noise inputs.")  # the first set of a tie
    if with_base:
        assert text == (
            "loss attack (base): TPR 0.62 on members and FPR 0.25 on in-distribution "
            "non-members, but FPR 0.75 on noise inputs."
        )
        assert html == (
            "loss attack (base): <strong>TPR 0.62</strong> on members and "
            "<strong>FPR 0.25</strong> on in-distribution non-members, but "
            "<strong>FPR 0.75</strong> on noise inputs."
        )
    else:
        assert text == "loss attack (base): TPR 0.62 on members, but FPR 0.75 on noise inputs."
        assert html == (
            "loss attack (base): <strong>TPR 0.62</strong> on members, but "
            "<strong>FPR 0.75</strong> on noise inputs."
        )


def test_headline_when_no_set_beats_the_original_word_for_word() -> None:
    rows = [
        MetricRow("base", "a<b", "original", "tpr", 0.5),
        MetricRow("base", "a<b", "original", "fpr", 0.5),
        MetricRow("base", "a<b", "noise", "fpr", 0.5),
    ]
    html, text = headline(rows)
    assert text == (
        "a<b attack (base): TPR 0.50 on members and FPR 0.50 on in-distribution "
        "non-members; no out-of-distribution set is flagged more often (highest: FPR 0.50 "
        "on noise)."
    )
    assert html == (
        "a&lt;b attack (base): <strong>TPR 0.50</strong> on members and "
        "<strong>FPR 0.50</strong> on in-distribution non-members; no out-of-distribution "
        "set is flagged more often (highest: <strong>FPR 0.50</strong> on noise)."
    )


def test_headline_without_a_shadow_word_for_word() -> None:
    rows = [MetricRow("base", a, "shadow", "no_shadow", 1.0) for a in ("loss", "salem")]
    for a, auc in (("loss", 0.6), ("salem", 0.7)):
        rows += [
            MetricRow("base", a, "original", "auroc", auc),
            MetricRow("base", a, "original", "fpr", NAN),
            MetricRow("base", a, "noise", "fpr", NAN),
            MetricRow("base", a, "noise", "auroc", auc - 0.3),
            MetricRow("base", a, "scaled", "auroc", auc - 0.2),
            MetricRow("base", a, "gan", "auroc", NAN),
        ]
    html, text = headline(rows)
    assert text == (
        "salem attack (base), no shadow model: AUROC 0.70 on in-distribution non-members, "
        "AUROC 0.40 on noise (lowest); no threshold, so no TPR or FPR."
    )
    assert html == (
        "salem attack (base), no shadow model: <strong>AUROC 0.70</strong> on "
        "in-distribution non-members, <strong>AUROC 0.40</strong> on noise (lowest); no "
        "threshold, so no TPR or FPR."
    )
    alone = [r for r in rows if r.dataset in ("shadow", "original")]
    assert headline(alone)[1] == (
        "salem attack (base), no shadow model: AUROC 0.70 on in-distribution non-members; "
        "no threshold, so no TPR or FPR."
    )
    # no AUROC either: the first attack
    blank = [r._replace(value=NAN) if r.metric == "auroc" else r for r in alone]
    assert headline(blank)[1].startswith("loss attack (base), no shadow model: AUROC –")


def test_headline_without_ood_sets_word_for_word() -> None:
    rows = [
        MetricRow("base", "salem", "original", "tpr", 0.75),  # no AUROC: not the strongest
        MetricRow("base", "entropy", "original", "auroc", 0.55),
        MetricRow("base", "loss", "original", "tpr", 0.5),
        MetricRow("base", "loss", "original", "fpr", 0.25),
        MetricRow("base", "loss", "original", "auroc", 0.625),
        MetricRow("other", "loss", "shadow", "no_shadow", 1.0),  # another variant's
    ]
    html, text = headline(rows)
    assert text == (
        "loss attack (base): TPR 0.50, FPR 0.25 on in-distribution non-members (AUROC 0.62)."
    )
    assert html == (
        "loss attack (base): <strong>TPR 0.50</strong>, <strong>FPR 0.25</strong> on "
        "in-distribution non-members (AUROC 0.62)."
    )
