"""Two runs side by side (``mistrust diff RUN_A RUN_B``): the values that moved beyond
their intervals, the verdicts that changed, and what only one run has.

A value with a 95 % interval in ``results.csv`` (:data:`INTERVALS`) **moved** when the
difference ``b - a`` exceeds the combined margin ``sqrt(h_a^2 + h_b^2)``, where ``h_a``
and ``h_b`` are the half-widths of the two intervals on the side that faces the other
value (``a``'s upper half-width and ``b``'s lower one when ``b > a``). For two independent
runs whose intervals are symmetric 95 % normal intervals this is the two-sided 5 % test
of "the same value"; it is weaker than asking the two intervals not to overlap (which
needs ``|b - a| > h_a + h_b``) and stronger than "outside the other run's interval".
Runs on the same seed are not independent, so the test is conservative there. A value
whose interval is not defined (NaN: an FPR the non-members cannot resolve) is not
compared. docs/CHECKS.md, "Comparing two runs".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from mistrust.checks import label_of
from mistrust.io import atomic_write_text
from mistrust.present.tables.formats import markdown, tidy_csv, to_text
from mistrust.present.tables.model import SHADOW, Table, attacks_of, ordered, read_attack_rows
from mistrust.rows import MetricRow
from mistrust.runtime.paths import RunPaths

__all__ = ["DIFF_COLUMNS", "INTERVALS", "Change", "RunDiff", "diff_rows", "diff_runs"]

#: a metric of results.csv -> the rows holding its 95 % interval (what computes it)
INTERVALS: dict[str, tuple[str, str, str]] = {
    "auroc": ("auroc_ci_low", "auroc_ci_high", "DeLong"),
    "tpr": ("tpr_ci_low", "tpr_ci_high", "Clopper-Pearson"),
    "fpr": ("fpr_ci_low", "fpr_ci_high", "Clopper-Pearson"),
    "tpr_at_1fpr": ("tpr_at_1fpr_ci_low", "tpr_at_1fpr_ci_high", "bootstrap"),
    "tpr_at_0.1fpr": ("tpr_at_0.1fpr_ci_low", "tpr_at_0.1fpr_ci_high", "bootstrap"),
}
#: the columns of ``diff.csv``
DIFF_COLUMNS = (
    "variant",
    "attack",
    "dataset",
    "metric",
    "a",
    "a_ci_low",
    "a_ci_high",
    "b",
    "b_ci_low",
    "b_ci_high",
    "difference",
    "margin",
    "moved",
)


class Change(NamedTuple):
    """One value with its interval in both runs."""

    variant: str
    attack: str
    dataset: str
    metric: str
    a: float
    a_low: float
    a_high: float
    b: float
    b_low: float
    b_high: float

    @property
    def difference(self) -> float:
        return self.b - self.a

    @property
    def margin(self) -> float:
        """``sqrt(h_a^2 + h_b^2)``, each half-width on the side facing the other value."""
        up = self.b >= self.a
        h_a = (self.a_high - self.a) if up else (self.a - self.a_low)
        h_b = (self.b - self.b_low) if up else (self.b_high - self.b)
        return math.hypot(h_a, h_b)

    @property
    def moved(self) -> bool:
        return abs(self.difference) > self.margin


@dataclass
class RunDiff:
    """What :func:`diff_rows` finds."""

    changes: list[Change] = field(default_factory=list)  # every value compared
    verdicts: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    only: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # "a"/"b" -> what

    @property
    def moved(self) -> list[Change]:
        return [c for c in self.changes if c.moved]


def _sets(rows: Sequence[MetricRow]) -> list[str]:
    return ordered(r.dataset for r in rows if r.dataset != SHADOW)


def diff_rows(a_rows: Sequence[MetricRow], b_rows: Sequence[MetricRow]) -> RunDiff:
    """Compare the rows of two ``results.csv`` files (run A, then run B)."""
    a = {tuple(r[:4]): r.value for r in a_rows}
    b = {tuple(r[:4]): r.value for r in b_rows}
    out = RunDiff()
    for key, x in a.items():
        v, att, d, metric = key
        if metric not in INTERVALS or key not in b:
            continue
        low, high, _ = INTERVALS[metric]
        bounds = [a.get((v, att, d, low)), a.get((v, att, d, high))]
        bounds += [b.get((v, att, d, low)), b.get((v, att, d, high))]
        values = [x, b[key], *bounds]
        if any(y is None or math.isnan(y) for y in values):
            continue  # no interval (not resolved, no shadow): nothing to compare against
        a_low, a_high, b_low, b_high = bounds
        change = Change(v, att, d, metric, x, a_low, a_high, b[key], b_low, b_high)
        if metric == "tpr" and any(c[:2] == key[:2] and c[3:] == change[3:] for c in out.changes):
            continue  # the members' TPR, the same beside every set: said once
        out.changes.append(change)
    for key, x in a.items():
        y = b.get(key)
        if key[3] == "verdict" and y is not None and y != x:
            out.verdicts.append((*key[:3], label_of(x), label_of(y)))  # type: ignore[arg-type]
    for side, mine, other in (("a", a_rows, b_rows), ("b", b_rows, a_rows)):
        out.only[side] = {
            what: [x for x in ordered(get(mine)) if x not in set(get(other))]
            for what, get in (
                ("variants", lambda rows: [r.variant for r in rows]),
                ("attacks", attacks_of),
                ("sets", _sets),
            )
        }
    return out


def _ci(low: float, high: float) -> str:
    return f"[{low:.3f}, {high:.3f}]"


def diff_tables(d: RunDiff) -> list[Table]:
    """The moved values and the changed verdicts as tables of :mod:`mistrust.present.tables`."""
    moved = d.moved
    rows = [f"{c.variant} / {c.attack} / {c.dataset} / {c.metric}" for c in moved]
    cells: dict[tuple[str, str], float | str] = {}
    for r, c in zip(rows, moved, strict=True):
        cells |= {
            (r, "A"): c.a,
            (r, "A 95% CI"): _ci(c.a_low, c.a_high),
            (r, "B"): c.b,
            (r, "B 95% CI"): _ci(c.b_low, c.b_high),
            (r, "B - A"): f"{c.difference:+.3f}",
            (r, "margin"): c.margin,
        }
    out = [
        Table(
            "diff_moved",
            "Moved beyond their intervals",
            rows,
            ["A", "A 95% CI", "B", "B 95% CI", "B - A", "margin"],
            cells,
            "variant / attack / set / metric",
            note="moved: |B - A| > margin = sqrt(h_A^2 + h_B^2), the half-widths of the two "
            "95 % intervals on the side facing the other value",
        )
    ]
    if d.verdicts:
        vrows = [f"{v} / {a} / {s}" for v, a, s, _, _ in d.verdicts]
        vcells = {(r, "A"): x for r, (*_, x, _) in zip(vrows, d.verdicts, strict=True)}
        vcells |= {(r, "B"): y for r, (*_, y) in zip(vrows, d.verdicts, strict=True)}
        out.append(
            Table(
                "diff_verdicts",
                "Verdicts that changed",
                vrows,
                ["A", "B"],
                dict(vcells),
                "variant / attack / set",
            )
        )
    return out


def _only_lines(d: RunDiff, names: tuple[str, str]) -> list[str]:
    lines = []
    for side, name in zip(("a", "b"), names, strict=True):
        parts = [f"{what} {', '.join(xs)}" for what, xs in d.only.get(side, {}).items() if xs]
        if parts:
            lines.append(f"Only in {name}: {'; '.join(parts)}")
    return lines


def _intro(d: RunDiff, names: tuple[str, str]) -> str:
    metrics = ", ".join(INTERVALS)
    return (
        f"A = {names[0]}, B = {names[1]}: {len(d.changes)} values with a 95 % interval in "
        f"both ({metrics}); {len(d.moved)} moved beyond their intervals, "
        f"{len(d.verdicts)} verdicts changed."
    )


def diff_runs(run_a: Path, run_b: Path, out: Path | None = None) -> tuple[str, list[Path]]:
    """Compare two run directories; write ``diff.md`` and ``diff.csv`` into ``out`` (default
    ``run_b``). Returns the console text and the paths written.

    Raises:
        FileNotFoundError: a run directory without ``results.csv``.
    """
    a, b = RunPaths(run_a), RunPaths(run_b)
    d = diff_rows(read_attack_rows(a), read_attack_rows(b))
    names = (str(a.root), str(b.root))
    tables = diff_tables(d)
    only = _only_lines(d, names)
    text = [_intro(d, names), *only]
    md = [f"# {a.root.name} → {b.root.name}\n", _intro(d, names) + "\n", *[x + "\n" for x in only]]
    for t in tables:
        text += ["", t.title, to_text(t) if t.rows else "(none)"]
        md += [f"## {t.title}\n", (markdown(t) if t.rows else "None.\n")]
        if t.note:
            md.append(f"_{t.note}_\n")
    target = RunPaths(out) if out is not None else b
    target.root.mkdir(parents=True, exist_ok=True)
    md_path, csv_path = target.diff_md, target.diff_csv
    atomic_write_text(md_path, "\n".join(md))
    rows = [(*c, c.difference, c.margin, int(c.moved)) for c in d.changes]
    atomic_write_text(csv_path, tidy_csv(DIFF_COLUMNS, rows))
    return "\n".join(text), [md_path, csv_path]
