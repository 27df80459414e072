"""The table model: :class:`Table` and the evaluation-set grid every audit table starts from.

A table is built once from typed rows (:mod:`mistrust.rows`) and handed to the
renderers of :mod:`mistrust.present.tables.formats` (console, Markdown, CSV, LaTeX, HTML),
which only format it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mistrust.rows import MetricRow, ModelRow, Values
from mistrust.runtime.paths import RunPaths

MEMBERS = "members (TPR)"  # the first row of a false-positive table: TPR on the members
SHADOW = "shadow"  # the "dataset" of the rows that describe the shadow-fitted operating point

Cell = float | str  # str: a verdict, a formatted value, or why a number is absent


@dataclass
class Table:
    """One table: ``cells[(row, col)]``; ``shade`` says how the HTML grades cells."""

    key: str  # file stem, derived from an index (never from user strings alone)
    title: str
    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], Cell]
    corner: str = ""
    shade: str = "none"  # "rate" (members row blue, others red), "auroc", "share", "none"
    note: str = ""
    group: str = ""  # the variant a table belongs to ("" for cross-variant tables)
    bold_max: bool = field(default=False)
    missing: str = ""  # what a NaN cell says, e.g. "no shadow" ("" : the format's own)
    #: a column's number format where 3 decimals say too little (a threshold in score
    #: units: 0.9999996 is not "1.000"), e.g. ``{"threshold": ".6g"}``
    formats: dict[str, str] = field(default_factory=dict)

    def number(self, col: str, x: float) -> str:
        """``x`` as column ``col`` writes a number (3 decimals unless ``formats`` says)."""
        return format(x, self.formats.get(col, ".3f"))


def ordered(values: Iterable[str]) -> list[str]:
    """Unique values in order of first appearance."""
    return list(dict.fromkeys(values))


def variants_of(rows: Sequence[MetricRow]) -> list[str]:
    return ordered(r.variant for r in rows)


def attacks_of(rows: Sequence[MetricRow]) -> list[str]:
    return ordered(r.attack for r in rows)


def sets_of(rows: Sequence[MetricRow]) -> list[str]:
    return ordered(r.dataset for r in rows if r.dataset != SHADOW)


def of_variant(rows: Sequence[MetricRow], variant: str) -> list[MetricRow]:
    return [r for r in rows if r.variant == variant]


def lookup(rows: Sequence[MetricRow | ModelRow]) -> Values:
    """``{(variant, attack or role, dataset, metric): value}`` (a :class:`Values`)."""
    return Values({tuple(r[:4]): r.value for r in rows})  # type: ignore[misc]


def no_shadow(rows: Sequence[MetricRow], variant: str | None = None) -> bool:
    """Whether ``variant``'s attacks (any variant's for ``None``) were audited without a
    shadow model."""
    return any(
        r.dataset == SHADOW and r.metric == "no_shadow" and variant in (None, r.variant)
        for r in rows
    )


def _grid(
    rows: Sequence[MetricRow],
    keep: Callable[[MetricRow], bool],
    col: Callable[[MetricRow], str],
    metric: str,
) -> tuple[list[str], list[str], dict[tuple[str, str], float]]:
    cells: dict[tuple[str, str], float] = {}
    sets: list[str] = []
    cols: list[str] = []
    for r in rows:
        if not keep(r) or r.dataset == SHADOW:
            continue
        c = col(r)
        if c not in cols:
            cols.append(c)
        if r.metric == metric:
            if r.dataset not in sets:
                sets.append(r.dataset)
            cells[(r.dataset, c)] = r.value
        if r.metric == "tpr" and r.dataset == "original":
            cells[(MEMBERS, c)] = r.value
    return [MEMBERS, *sets], cols, cells


def set_table(
    rows: Sequence[MetricRow],
    *,
    variant: str | None = None,
    attack: str | None = None,
    metric: str = "fpr",
    key: str = "",
    title: str = "",
) -> Table:
    """Evaluation sets as rows (members' TPR first, for ``fpr``) against the attacks of
    ``variant`` or, given ``attack``, against the variants; cells = ``metric``.

    The members' row is left out for any other metric. A NaN cell of a run without a
    shadow model says "no shadow".
    """
    if (variant is None) == (attack is None):
        raise ValueError("give exactly one of variant and attack")
    if variant is not None:
        names, cols, cells = _grid(rows, lambda r: r.variant == variant, lambda r: r.attack, metric)
        corner = "set \\ attack"
    else:
        names, cols, cells = _grid(rows, lambda r: r.attack == attack, lambda r: r.variant, metric)
        corner = "set \\ variant"
    if metric != "fpr":
        names = names[1:]
        cells = {k: x for k, x in cells.items() if k[0] != MEMBERS}
    return Table(
        key,
        title,
        names,
        cols,
        dict(cells),
        corner,
        group=variant or "",
        # a NaN rate of an audit without a shadow: no threshold, so no decision
        missing="no shadow" if metric == "fpr" and no_shadow(rows, variant) else "",
    )


def read_value(text: str) -> float:
    """A value cell of a tidy CSV: a number, ``nan``, or empty (no value, also NaN)."""
    return float(text) if text.strip() else math.nan


def _read(path: Path, row: type[MetricRow] | type[ModelRow]) -> list:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or len(header) != 5:
            raise ValueError(f"{path}: expected 5 columns, got header {header}")
        return [row(*r[:4], read_value(r[4])) for r in reader if r]


def read_attack_rows(run: RunPaths | Path) -> list[MetricRow]:
    """The rows of ``results.csv``."""
    paths = run if isinstance(run, RunPaths) else RunPaths(run)
    if not paths.results_csv.is_file():
        raise FileNotFoundError(
            f"no results.csv in run directory {paths.root}: run `mistrust run` into it first"
        )
    return _read(paths.results_csv, MetricRow)


def read_model_rows(run: RunPaths | Path) -> list[ModelRow]:
    """The rows of ``model_metrics.csv`` ([] if none)."""
    paths = run if isinstance(run, RunPaths) else RunPaths(run)
    path = paths.model_metrics_csv
    return _read(path, ModelRow) if path.is_file() else []


def is_nan(x: Cell | None) -> bool:
    return isinstance(x, float) and math.isnan(x)
