"""The audit tables of a run, built once from its typed rows, in display order.

:func:`build_tables` is the one builder behind every renderer: ``report.md``,
``report.html`` and ``tables/*.tex`` show all of its tables, ``tables.md``,
``tables/*.csv`` and the console the false-positive ones (:func:`fpr_table`,
:func:`variant_fpr_table`). What each number means: docs/CHECKS.md, README "Results".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mistrust.checks import label_of
from mistrust.checks.assemble import verdict_of_rows
from mistrust.checks.measure import LOW_FPRS
from mistrust.present.tables.model import (
    Table,
    attacks_of,
    lookup,
    no_shadow,
    of_variant,
    ordered,
    set_table,
    sets_of,
    variants_of,
)
from mistrust.rows import MetricRow, ModelRow, Values

OPERATING = (
    ("tpr", "TPR"),
    ("tpr_ci_low", "TPR CI low"),
    ("tpr_ci_high", "TPR CI high"),
    ("fpr", "FPR"),
    ("precision", "precision"),
    ("accuracy", "accuracy"),
    ("auroc", "AUROC"),
    ("aupr", "AUPR"),
    ("tpr_at_0.1fpr", "TPR@0.1%FPR"),
    ("tpr_at_1fpr", "TPR@1%FPR"),
    ("fpr_at_95tpr", "FPR@95%TPR"),
    ("oracle_accuracy", "oracle accuracy"),
)
#: the in-distribution checks table: (metric of the "original" set, column)
CHECKS = (
    ("auroc", "AUROC"),
    ("auroc_ci_low", "AUROC CI low"),
    ("auroc_ci_high", "AUROC CI high"),
    ("baseline_auroc", "blind baseline AUROC"),
    ("null_auroc", "null AUROC"),
    ("null_auroc_ci_low", "null CI low"),
    ("null_auroc_ci_high", "null CI high"),
    ("tpr_at_1fpr_ci_low", "TPR@1%FPR CI low"),
    ("tpr_at_1fpr_ci_high", "TPR@1%FPR CI high"),
    ("epsilon_lower_bound", "epsilon lower bound"),
)
#: flags, in the order the "flags" column names them
FLAGS = (
    ("flag_constant", "constant"),
    ("flag_ties", "ties"),
    ("flag_polarity", "polarity"),
    ("flag_null", "null test"),
)
BASELINE = "blind baseline"
NOT_RESOLVED = "n/r"  # a TPR at an FPR the set's non-members cannot resolve
THRESHOLD_FORMAT = ".6g"  # the shadow-fitted threshold: six significant digits
IN_DISTRIBUTION = "original"
MODEL = (
    (("train", "accuracy"), "train acc."),
    (("test", "accuracy"), "test acc."),
    (("test", "ece"), "ECE"),
    (("test", "overconfidence_error"), "OE"),
    (("test", "nll"), "NLL"),
    (("members", "mmps"), "MMPS members"),
    (("nonmembers", "mmps"), "MMPS non-members"),
)
NO_SHADOW_NOTE = (
    "No shadow model: the attacks' thresholds are fitted on a shadow model, so a "
    "decision (TPR, FPR, precision at the threshold) is not computable and the cells say "
    "'no shadow'; AUROC, AUPR and TPR at a fixed FPR need no threshold."
)


def fpr_table(rows: Sequence[MetricRow], variant: str, index: int = 0) -> Table:
    """False-positive rate per evaluation set (rows) and attack (columns) of ``variant``;
    the first row is the members' TPR. ``index``: the variant's place in the run."""
    t = set_table(
        rows,
        variant=variant,
        key=f"fpr_v{index}",
        title=f"False-positive rate per evaluation set ({variant})",
    )
    t.shade, t.bold_max = "rate", True
    t.note = (
        "first row: TPR on the members; other rows: FPR on that set's non-members, at the "
        "shadow-calibrated threshold" + _flagged_note(lookup(rows), variant, t.cols)
    )
    if t.missing:
        t.note = f"{NO_SHADOW_NOTE} {t.note}"
    return t


def auroc_table(rows: Sequence[MetricRow], variant: str, index: int = 0) -> Table:
    """AUROC of the members against each evaluation set, per attack of ``variant`` (and the
    blind baseline, if the run has one)."""
    t = set_table(
        rows,
        variant=variant,
        metric="auroc",
        key=f"auroc_v{index}",
        title=f"AUROC, members vs each set ({variant})",
    )
    base = _baseline_aurocs(rows, variant)
    if base:
        t.cells.update({(d, BASELINE): x for d, x in base.items()})
        t.cols = [*t.cols, BASELINE]
    t.shade = "auroc"
    t.note = "below 0.5: the set's non-members look more like members than the members do" + (
        "; blind baseline: a classifier of the inputs alone, no model" if base else ""
    )
    return t


def variant_fpr_table(rows: Sequence[MetricRow], attack: str, index: int = 0) -> Table:
    """False-positive rate per evaluation set (rows) and variant (columns) of ``attack``."""
    t = set_table(rows, attack=attack, key=f"fpr_a{index}", title=f"{attack}: FPR per variant")
    t.shade, t.bold_max, t.note = "rate", True, "first row: TPR on the members"
    return t


def build_tables(rows: Sequence[MetricRow], model_rows: Sequence[ModelRow]) -> list[Table]:
    """The report's main tables, in display order."""
    tables: list[Table] = []
    variants = variants_of(rows)
    for i, v in enumerate(variants):
        tables += [fpr_table(rows, v, i), auroc_table(rows, v, i), operating_table(rows, v, i)]
        tables += check_tables(rows, v, i)
    if len(variants) > 1:
        tables += [variant_fpr_table(rows, a, j) for j, a in enumerate(attacks_of(rows))]
    if model_rows:
        tables += model_tables(model_rows)
    from mistrust.present.tables.privacy import privacy_table  # DP variants: docs/DP.md

    private = privacy_table(rows, model_rows)
    return tables + ([private] if private is not None else [])


def operating_table(rows: Sequence[MetricRow], v: str, i: int = 0) -> Table:
    """The in-distribution operating point of each attack of variant ``v``."""
    val = lookup(rows)
    attacks = attacks_of(of_variant(rows, v))
    cells: dict[tuple[str, str], float | str] = {
        (a, label): val[(v, a, "original", m)]
        for a in attacks
        for m, label in OPERATING
        if (v, a, "original", m) in val
    }
    cells.update(_unresolved(val, v, attacks))
    cells.update(
        {
            (a, "threshold"): val[(v, a, "shadow", "operating_score")]
            for a in attacks
            if (v, a, "shadow", "operating_score") in val
        }
    )
    cols = [label for _, label in OPERATING] + (
        ["threshold"] if any(k[1] == "threshold" for k in cells) else []
    )
    note = (
        "members vs original non-members; CI = exact 95% Clopper-Pearson; "
        "oracle = best threshold in hindsight; threshold: the attack's decision threshold "
        "fitted on the shadow model, in score units (results.csv: set shadow, metric "
        "operating_score)"
        + (
            f"; {NOT_RESOLVED}: too few non-members to resolve that FPR"
            if any(x == NOT_RESOLVED for x in cells.values())
            else ""
        )
    )
    t = Table(
        f"operating_v{i}",
        f"In-distribution operating points ({v})",
        attacks,
        cols,
        cells,
        "attack",
        "none",
        note,
        v,
    )
    # the shadow-fitted threshold (results.csv: dataset "shadow", metric "operating_score")
    # in score units: a max score of 0.9999996 or a loss of -1.2e-05 needs its digits
    t.formats = {"threshold": THRESHOLD_FORMAT}
    if no_shadow(rows, v):
        t.missing, t.note = "no shadow", f"{NO_SHADOW_NOTE} {t.note}"
    return t


def _baseline_aurocs(rows: Sequence[MetricRow], v: str) -> dict[str, float]:
    """The blind baseline's AUROC per set (the same beside every attack: it sees no model)."""
    out: dict[str, float] = {}
    for r in rows:
        if r.variant == v and r.metric == "baseline_auroc" and r.dataset not in out:
            out[r.dataset] = r.value
    return out


def _unresolved(val: dict, v: str, attacks: list[str]) -> dict[tuple[str, str], str]:
    """Operating-point cells of a TPR at an FPR below the set's lowest resolvable FPR."""
    labels = dict(OPERATING)
    out = {}
    for a in attacks:
        lowest = val.get((v, a, IN_DISTRIBUTION, "min_resolvable_fpr"))
        for key, fpr in LOW_FPRS:
            if lowest is not None and fpr < lowest - 1e-12:
                out[(a, labels[key])] = NOT_RESOLVED
    return out


def check_tables(rows: Sequence[MetricRow], v: str, i: int) -> list[Table]:
    """The trust checks of variant ``v`` (docs/CHECKS.md), if the run has them: the
    in-distribution checks per attack, the verdict per set and the verdict with its reason."""
    val = lookup(rows)
    attacks = [a for a in attacks_of(of_variant(rows, v)) if _has_verdict(val, v, a)]
    if not attacks:
        return []
    sets = [d for d in sets_of(of_variant(rows, v)) if (v, attacks[0], d, "verdict") in val]
    cells: dict[tuple[str, str], float | str] = {
        (a, label): val[(v, a, IN_DISTRIBUTION, m)]
        for a in attacks
        for m, label in CHECKS
        if (v, a, IN_DISTRIBUTION, m) in val
    }
    cols = [label for m, label in CHECKS if any((a, label) in cells for a in attacks)]
    for a in attacks:
        for bound in ("low", "high"):
            key = (a, f"TPR@1%FPR CI {bound}")
            if key in cells and math.isnan(cells[key]):  # type: ignore[arg-type]
                cells[key] = NOT_RESOLVED  # the bootstrap is left out where 1 % is not resolved
        cells[(a, "flags")] = flags_text(val, v, a)
    per_set = {
        (d, a): label_of(val[(v, a, d, "verdict")])
        for a in attacks
        for d in sets
        if (v, a, d, "verdict") in val
    }
    reasons: dict[tuple[str, str], float | str] = {}
    for a in attacks:
        verdict = verdict_of_rows(val, v, a, IN_DISTRIBUTION)
        if verdict is not None:
            reasons[(a, "verdict")] = verdict.label
            reasons[(a, "reason")] = verdict.reason
    out = [
        Table(
            f"checks_v{i}",
            f"Trust checks on the in-distribution set ({v})",
            attacks,
            [*cols, "flags"],
            cells,
            "attack",
            "none",
            "AUROC CI: DeLong 95%; blind baseline: inputs only, no model; null: two halves "
            "of the non-members, 99% interval must hold 0.5; TPR@1%FPR CI: bootstrap; "
            "epsilon: certified by the shadow-fixed operating point (delta 1e-5, 95%); "
            f"{NOT_RESOLVED}: too few non-members to resolve 1% FPR",
            v,
        ),
        Table(
            f"verdicts_v{i}",
            f"Verdict per evaluation set ({v})",
            sets,
            attacks,
            per_set,
            "set \\ attack",
            "none",
            "leakage shown / not shown / inconclusive; the reasons are in the verdict table",
            v,
        ),
    ]
    if reasons:
        out.append(
            Table(
                f"reasons_v{i}",
                f"Verdict per attack ({v})",
                [a for a in attacks if (a, "verdict") in reasons],
                ["verdict", "reason"],
                reasons,
                "attack",
                "none",
                "on the in-distribution set; docs/CHECKS.md says how the verdict is decided",
                v,
            )
        )
    return out


def _flagged_note(val: Values, v: str, attacks: list[str]) -> str:
    """``"; flagged: salem (constant (scaled))"``: the attacks whose numbers a flag
    qualifies (docs/CHECKS.md), or "" when none is flagged."""
    flagged = [(a, flags_text(val, v, a)) for a in attacks]
    flagged = [f"{a} ({f})" for a, f in flagged if f != "none"]
    return f"; flagged: {', '.join(flagged)}" if flagged else ""


def _has_verdict(val: Values, v: str, a: str) -> bool:
    return bool(val.across_sets(v, a, "verdict"))


def flags_text(val: Values, v: str, a: str) -> str:
    """The raised flags of attack ``a`` on any set, e.g. ``"constant (scaled), ties"``;
    ``"none"`` if none."""
    out = []
    for key, name in FLAGS:
        where = [d for d, x in val.across_sets(v, a, key) if x == 1]
        if where:
            out.append(name if where == [IN_DISTRIBUTION] else f"{name} ({', '.join(where)})")
    return ", ".join(out) or "none"


def model_tables(model_rows: Sequence[ModelRow]) -> list[Table]:
    """Target-model quality per variant, and EMD of max scores (members vs each set)."""
    val = lookup(model_rows)
    variants = ordered(r.variant for r in model_rows)
    cells = {
        (v, label): val[(v, "target", d, m)]
        for v in variants
        for (d, m), label in MODEL
        if (v, "target", d, m) in val
    }
    cols = [label for (d, m), label in MODEL if any((v, label) in cells for v in variants)]
    out = [
        Table(
            "models",
            "Target models",
            variants,
            cols,
            cells,
            "variant",
            "none",
            "ECE and OE: 15 equal-width bins on the target's test split; "
            "MMPS: mean max prediction score",
        )
    ]
    emd_rows = ordered(
        r.dataset for r in model_rows if r.role == "target" and r.metric == "emd_max_score"
    )
    if emd_rows:
        cells = {
            (d, v): val[(v, "target", d, "emd_max_score")]
            for v in variants
            for d in emd_rows
            if (v, "target", d, "emd_max_score") in val
        }
        out.append(
            Table(
                "emd",
                "Earth mover's distance of max scores, members vs each set",
                emd_rows,
                variants,
                cells,
                "set \\ variant",
                "none",
                "small: the set's max scores look like the members'",
            )
        )
    return out
