"""The report's tables: read the tidy CSVs, build the main tables, write Markdown and LaTeX.

A :class:`Table` holds float cells keyed by ``(row, column)``; the renderers
(Markdown via :func:`mistrust.results.markdown_table`, LaTeX booktabs here, HTML
in :mod:`mistrust.report.html`) only format it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from mistrust.checks import label_of
from mistrust.checks.measure import LOW_FPRS
from mistrust.checks.rows import verdict_of_rows
from mistrust.io import atomic_write_text
from mistrust.metrics.persample import strongest_attack
from mistrust.results import audit_table, markdown_table, variant_table

MEMBERS = "members (TPR)"
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


@dataclass
class Table:
    """One table: ``cells[(row, col)]`` floats; ``shade`` says how the HTML grades cells."""

    key: str  # file stem, derived from an index (never from user strings alone)
    title: str
    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], float | str]  # str: a verdict, or why a number is absent
    corner: str = ""
    shade: str = "none"  # "rate" (members row blue, others red), "auroc", "none"
    note: str = ""
    group: str = ""  # the variant a table belongs to ("" for cross-variant tables)
    bold_max: bool = field(default=False)
    missing: str = ""  # what a NaN cell says, e.g. "no shadow" ("" : a dash)


def _best_by_auroc(val: dict, v: str, attacks: list[str]) -> str:
    """The attack with the highest in-distribution AUROC (the first listed on a tie, or
    when none has one)."""
    auroc = {a: val.get((v, a, "original", "auroc"), math.nan) for a in attacks}
    return strongest_attack(auroc) or attacks[0]


def _read(path: Path) -> list[tuple]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or len(header) != 5:
            raise ValueError(f"{path}: expected 5 columns, got header {header}")
        return [(*r[:4], float(r[4])) for r in reader if r]


def read_attack_rows(run_dir: Path) -> list[tuple]:
    """``(variant, attack, dataset, metric, value)`` rows of ``results.csv``."""
    path = Path(run_dir) / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"no results.csv in run directory {run_dir}: run `mistrust run` into it first"
        )
    return _read(path)


def read_model_rows(run_dir: Path) -> list[tuple]:
    """``(variant, role, dataset, metric, value)`` rows of ``model_metrics.csv`` ([] if none)."""
    path = Path(run_dir) / "model_metrics.csv"
    return _read(path) if path.is_file() else []


def ordered(values: list[str]) -> list[str]:
    """Unique values in order of first appearance."""
    return list(dict.fromkeys(values))


def variants_of(rows: list[tuple]) -> list[str]:
    return ordered([r[0] for r in rows])


def attacks_of(rows: list[tuple]) -> list[str]:
    return ordered([r[1] for r in rows])


def sets_of(rows: list[tuple]) -> list[str]:
    return ordered([r[2] for r in rows if r[2] != "shadow"])


NO_SHADOW_NOTE = (
    "No shadow model: the attacks' thresholds are fitted on a shadow model, so a "
    "decision (TPR, FPR, precision at the threshold) is not computable and the cells say "
    "'no shadow'; AUROC, AUPR and TPR at a fixed FPR need no threshold."
)


def no_shadow(rows: list[tuple], variant: str) -> bool:
    """Whether ``variant``'s attacks were audited without a shadow model."""
    return any(r[0] == variant and r[2] == "shadow" and r[3] == "no_shadow" for r in rows)


def lookup(rows: list[tuple]) -> dict[tuple[str, str, str, str], float]:
    return {(a, b, c, m): x for a, b, c, m, x in rows}


def fmt(x: float | str | None, digits: int = 2) -> str:
    if isinstance(x, str):
        return x
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def headline(rows: list[tuple]) -> tuple[str, str]:
    """The one-sentence finding for the first variant, as ``(html, plain text)``."""
    v = variants_of(rows)[0]
    val = lookup(rows)
    attacks = attacks_of([r for r in rows if r[0] == v])
    ood = [s for s in sets_of([r for r in rows if r[0] == v]) if s != "original"]
    cands = [
        (val[(v, a, s, "fpr")], -i, -j, a, s)
        for i, a in enumerate(attacks)
        for j, s in enumerate(ood)
        if (v, a, s, "fpr") in val
    ]
    cands = [c for c in cands if not math.isnan(c[0])]
    if cands:
        fpr, _, _, a, s = max(cands)
        tpr, base = val.get((v, a, "original", "tpr")), val.get((v, a, "original", "fpr"))
        parts = [(f"{a} attack ({v}): ", False), (f"TPR {fmt(tpr)}", True), (" on members", False)]
        if base is not None and not fpr > base:
            parts += [
                (" and ", False),
                (f"FPR {fmt(base)}", True),
                (
                    " on in-distribution "
                    "non-members; no out-of-distribution set is flagged more often (highest: ",
                    False,
                ),
                (f"FPR {fmt(fpr)}", True),
                (f" on {s}).", False),
            ]
        else:
            if base is not None:
                parts += [
                    (" and ", False),
                    (f"FPR {fmt(base)}", True),
                    (" on in-distribution non-members", False),
                ]
            parts += [(", but ", False), (f"FPR {fmt(fpr)}", True), (f" on {s} inputs.", False)]
    elif no_shadow(rows, v):  # no threshold: the threshold-free finding
        a = _best_by_auroc(val, v, attacks)
        parts = [
            (f"{a} attack ({v}), no shadow model: ", False),
            (f"AUROC {fmt(val.get((v, a, 'original', 'auroc')))}", True),
            (" on in-distribution non-members", False),
        ]
        low = [(val[(v, a, s, "auroc")], s) for s in ood if (v, a, s, "auroc") in val]
        low = [x for x in low if not math.isnan(x[0])]
        if low:
            x, s = min(low)
            parts += [(", ", False), (f"AUROC {fmt(x)}", True), (f" on {s} (lowest)", False)]
        parts.append(("; no threshold, so no TPR or FPR.", False))
    else:
        a = _best_by_auroc(val, v, attacks)
        parts = [
            (f"{a} attack ({v}): ", False),
            (f"TPR {fmt(val.get((v, a, 'original', 'tpr')))}", True),
            (", ", False),
            (f"FPR {fmt(val.get((v, a, 'original', 'fpr')))}", True),
            (
                f" on in-distribution non-members (AUROC "
                f"{fmt(val.get((v, a, 'original', 'auroc')))}).",
                False,
            ),
        ]
    html = "".join(f"<strong>{escape(t)}</strong>" if b else escape(t) for t, b in parts)
    return html, "".join(t for t, _ in parts)


def tradeoff_points(rows: list[tuple]) -> list[tuple[str, str, float, float, float]]:
    """``(variant, attack, mean OOD FPR, in-distribution AUROC, TPR at 1% FPR)`` per pair."""
    val, points = lookup(rows), []
    for v in variants_of(rows):
        ood = [s for s in sets_of([r for r in rows if r[0] == v]) if s != "original"]
        for a in attacks_of([r for r in rows if r[0] == v]):
            fprs = [val[(v, a, s, "fpr")] for s in ood if (v, a, s, "fpr") in val]
            if fprs and (v, a, "original", "auroc") in val:
                points.append(
                    (
                        v,
                        a,
                        sum(fprs) / len(fprs),
                        val[(v, a, "original", "auroc")],
                        val.get((v, a, "original", "tpr_at_1fpr"), math.nan),
                    )
                )
    return points


def build_tables(rows: list[tuple], model_rows: list[tuple]) -> list[Table]:
    """The report's main tables, in display order."""
    tables: list[Table] = []
    val = lookup(rows)
    variants = variants_of(rows)
    for i, v in enumerate(variants):
        unshadowed = no_shadow(rows, v)
        r, c, cells = audit_table(rows, v, "fpr")
        tables.append(
            Table(
                f"fpr_v{i}",
                f"False-positive rate per evaluation set ({v})",
                r,
                c,
                cells,
                "set \\ attack",
                "rate",
                "first row: TPR on the members; "
                "other rows: FPR on that set's non-members, at the shadow-"
                "calibrated threshold" + _flagged_note(val, v, c),
                v,
                bold_max=True,
            )
        )
        r, c, cells = audit_table(rows, v, "auroc")
        base = _baseline_aurocs(rows, v)
        if base:
            cells.update({(d, BASELINE): x for d, x in base.items()})
            c = [*c, BASELINE]
        tables.append(
            Table(
                f"auroc_v{i}",
                f"AUROC, members vs each set ({v})",
                r[1:],
                c,
                cells,
                "set \\ attack",
                "auroc",
                "below 0.5: the set's non-members look more like members than the members do"
                + ("; blind baseline: a classifier of the inputs alone, no model" if base else ""),
                v,
            )
        )
        attacks = attacks_of([x for x in rows if x[0] == v])
        cells = {
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
        tables.append(
            Table(
                f"operating_v{i}",
                f"In-distribution operating points ({v})",
                attacks,
                cols,
                cells,
                "attack",
                "none",
                "members vs original non-members; CI = exact 95% Clopper-Pearson; "
                "oracle = best threshold in hindsight; threshold in score units"
                + (
                    f"; {NOT_RESOLVED}: too few non-members to resolve that FPR"
                    if any(x == NOT_RESOLVED for x in cells.values())
                    else ""
                ),
                v,
            )
        )
        if unshadowed:
            for t in tables[-3:]:
                if t.key != f"auroc_v{i}":
                    t.missing = "no shadow"
                    t.note = NO_SHADOW_NOTE + (" " + t.note if t.note else "")
        tables += check_tables(rows, v, i)
    if len(variants) > 1:
        for j, a in enumerate(attacks_of(rows)):
            r, c, cells = variant_table(rows, a, "fpr")
            tables.append(
                Table(
                    f"fpr_a{j}",
                    f"{a}: FPR per variant",
                    r,
                    c,
                    cells,
                    "set \\ variant",
                    "rate",
                    "first row: TPR on the members",
                    bold_max=True,
                    missing="no shadow" if any(no_shadow(rows, v) for v in variants) else "",
                )
            )
    if model_rows:
        tables += model_tables(model_rows)
    return tables


def _baseline_aurocs(rows: list[tuple], v: str) -> dict[str, float]:
    """The blind baseline's AUROC per set (the same beside every attack: it sees no model)."""
    out: dict[str, float] = {}
    for rv, _, d, m, x in rows:
        if rv == v and m == "baseline_auroc" and d not in out:
            out[d] = x
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


def check_tables(rows: list[tuple], v: str, i: int) -> list[Table]:
    """The trust checks of variant ``v`` (docs/CHECKS.md), if the run has them: the
    in-distribution checks per attack, the verdict per set and the verdict with its reason."""
    val = lookup(rows)
    attacks = [a for a in attacks_of([r for r in rows if r[0] == v]) if _has_verdict(val, v, a)]
    if not attacks:
        return []
    sets = [
        d for d in sets_of([r for r in rows if r[0] == v]) if (v, attacks[0], d, "verdict") in val
    ]
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


def verdict_lines(rows: list[tuple]) -> list[tuple[str, str, str, list[tuple[str, str, str]]]]:
    """The summary's verdicts, first variant: per attack ``(attack, label, reason, notes)``
    on the in-distribution set; ``notes`` = ``(set, label, reason)`` for every other set
    where the attack separates the members from the set (leakage, distribution shift) or
    the verdict is inconclusive."""
    variants = variants_of(rows)
    if not variants:
        return []
    v, val = variants[0], lookup(rows)
    out = []
    for a in attacks_of([r for r in rows if r[0] == v]):
        own = verdict_of_rows(val, v, a, IN_DISTRIBUTION)
        if own is None:
            continue
        notes = []
        for d in sets_of([r for r in rows if r[0] == v and r[1] == a]):
            if d == IN_DISTRIBUTION:
                continue
            other = verdict_of_rows(val, v, a, d)
            if other is not None and (
                other.label != own.label or other.reason.startswith("distribution shift")
            ):
                notes.append((d, other.label, other.reason))
        out.append((a, own.label, own.reason, notes))
    return out


def _flagged_note(val: dict, v: str, attacks: list[str]) -> str:
    """``"; flagged: salem (constant (scaled))"``: the attacks whose numbers a flag
    qualifies (docs/CHECKS.md), or "" when none is flagged."""
    flagged = [(a, flags_text(val, v, a)) for a in attacks]
    flagged = [f"{a} ({f})" for a, f in flagged if f != "none"]
    return f"; flagged: {', '.join(flagged)}" if flagged else ""


def _has_verdict(val: dict, v: str, a: str) -> bool:
    return any(k[0] == v and k[1] == a and k[3] == "verdict" for k in val)


def flags_text(val: dict, v: str, a: str) -> str:
    """The raised flags of attack ``a`` on any set, e.g. ``"constant (scaled), ties"``;
    ``"none"`` if none."""
    out = []
    for key, name in FLAGS:
        where = [d for (rv, ra, d, m), x in val.items() if (rv, ra, m) == (v, a, key) and x == 1]
        if where:
            out.append(name if where == [IN_DISTRIBUTION] else f"{name} ({', '.join(where)})")
    return ", ".join(out) or "none"


def model_tables(model_rows: list[tuple]) -> list[Table]:
    """Target-model quality per variant, and EMD of max scores (members vs each set)."""
    val = lookup(model_rows)
    variants = ordered([r[0] for r in model_rows])
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
    emd_rows = ordered([r[2] for r in model_rows if r[1] == "target" and r[3] == "emd_max_score"])
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


def to_markdown(table: Table) -> str:
    text = f"### {table.title}\n\n" + markdown_table(
        table.rows, table.cols, table.cells, table.corner, missing=table.missing
    )
    return text + (f"\n_{table.note}_\n" if table.note else "")


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def _column_max(table: Table) -> dict[str, float]:
    best: dict[str, float] = {}
    for (r, c), x in table.cells.items():
        if isinstance(x, str):
            continue
        if r != MEMBERS and not math.isnan(x) and x > best.get(c, -math.inf):
            best[c] = x
    return best


def to_latex(table: Table) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    best = _column_max(table) if table.bold_max else {}
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{tex_escape(table.title)}}}",
        rf"\label{{tab:{table.key}}}",
        r"\begin{tabular}{l" + "r" * len(table.cols) + "}",
        r"\toprule",
        " & ".join(tex_escape(x) for x in [table.corner, *table.cols]) + r" \\",
        r"\midrule",
    ]
    for r in table.rows:
        vals = []
        for c in table.cols:
            x = table.cells.get((r, c))
            if isinstance(x, str):
                vals.append(tex_escape(x))
                continue
            s = "--" if x is None or math.isnan(x) else f"{x:.3f}"
            s = (
                tex_escape(table.missing)
                if x is not None and math.isnan(x) and table.missing
                else s
            )
            vals.append(rf"\textbf{{{s}}}" if x is not None and best.get(c) == x else s)
        lines.append(" & ".join([tex_escape(r), *vals]) + r" \\")
        if r == MEMBERS:
            lines.append(r"\midrule")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.note:
        lines.append(rf"\par\smallskip{{\footnotesize {tex_escape(table.note)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def write_latex(run_dir: Path, tables: list[Table]) -> list[Path]:
    """``tables/<key>.tex`` per table plus ``tables/all.tex`` that inputs them all."""
    out = Path(run_dir) / "tables"
    paths = []
    for t in tables:
        path = out / f"{t.key}.tex"
        atomic_write_text(path, to_latex(t))
        paths.append(path)
    index = "% generated by mistrust report; needs \\usepackage{booktabs}\n" + "".join(
        f"\\input{{tables/{p.stem}}}\n" for p in paths
    )
    atomic_write_text(out / "all.tex", index)
    return paths
