"""Tidy results (CSV / JSON) and the paper-style tables built from them."""

from __future__ import annotations

import csv
import io
import json
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mistrust.io import atomic_write_text

ATTACK_COLUMNS = ("variant", "attack", "dataset", "metric", "value")
MODEL_COLUMNS = ("variant", "role", "dataset", "metric", "value")


@dataclass
class RunResult:
    run_dir: Path
    attack_rows: list[tuple] = field(default_factory=list)
    model_rows: list[tuple] = field(default_factory=list)
    variant_info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    train_times: dict[str, float] = field(default_factory=dict)

    def value(self, variant: str, attack: str, dataset: str, metric: str) -> float:
        for v, a, d, m, x in self.attack_rows:
            if (v, a, d, m) == (variant, attack, dataset, metric):
                return x
        raise KeyError((variant, attack, dataset, metric))


def _csv(columns: tuple[str, ...], rows: list[tuple]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow([repr(x) if isinstance(x, float) else x for x in row])
    return buf.getvalue()


def tidy_csv(columns: tuple[str, ...], rows: Sequence[tuple]) -> str:
    """Tidy rows as CSV text, floats written exactly (``repr``): ``results.csv``'s format."""
    return _csv(columns, list(rows))


def _nest(rows: list[tuple]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a, b, c, metric, value in rows:
        out.setdefault(a, {}).setdefault(b, {}).setdefault(c, {})[metric] = (
            None if isinstance(value, float) and math.isnan(value) else value
        )
    return out


def versions() -> dict[str, str]:
    import numpy
    import torch

    from mistrust._version import __version__

    return {
        "mistrust": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def audit_table(
    rows: list[tuple], variant: str, metric: str = "fpr"
) -> tuple[list[str], list[str], dict]:
    """Rows = evaluation sets (members first), columns = attacks; TPR on the member row."""
    cells: dict[tuple[str, str], float] = {}
    sets: list[str] = []
    attacks: list[str] = []
    for v, a, d, m, x in rows:
        if v != variant or d == "shadow":
            continue
        if a not in attacks:
            attacks.append(a)
        if m == metric:
            if d not in sets:
                sets.append(d)
            cells[(d, a)] = x
        if m == "tpr" and d == "original":
            cells[("members (TPR)", a)] = x
    return ["members (TPR)", *sets], attacks, cells


def variant_table(
    rows: list[tuple], attack: str, metric: str = "fpr"
) -> tuple[list[str], list[str], dict]:
    """Rows = evaluation sets (members first), columns = variants, for one attack."""
    cells: dict[tuple[str, str], float] = {}
    sets: list[str] = []
    variants: list[str] = []
    for v, a, d, m, x in rows:
        if a != attack or d == "shadow":
            continue
        if v not in variants:
            variants.append(v)
        if m == metric:
            if d not in sets:
                sets.append(d)
            cells[(d, v)] = x
        if m == "tpr" and d == "original":
            cells[("members (TPR)", v)] = x
    return ["members (TPR)", *sets], variants, cells


def _md_cell(x: float | str | None, missing: str = "") -> str:
    # a text cell (a verdict, or why a number is not shown) is written as it is
    if x is None:
        return ""
    if isinstance(x, str):
        return x
    return missing if missing and math.isnan(x) else f"{x:.3f}"


def markdown_table(
    row_names: list[str], col_names: list[str], cells: dict, corner: str = "", *, missing: str = ""
) -> str:
    """``missing``: what a NaN cell says (e.g. "no shadow"); "" writes ``nan``."""
    lines = ["| " + " | ".join([corner, *col_names]) + " |", "|" + "---|" * (len(col_names) + 1)]
    for r in row_names:
        vals = [cells.get((r, c)) for c in col_names]
        lines.append("| " + " | ".join([r, *(_md_cell(x, missing) for x in vals)]) + " |")
    return "\n".join(lines) + "\n"


def write_results(
    result: RunResult, *, variants: Sequence[str], attacks: Sequence[str], config: dict[str, Any]
) -> None:
    """Write ``results.csv``, ``model_metrics.csv``, ``results.json`` and the tables.

    ``variants`` / ``attacks``: the run's names, in the order the tables show them;
    ``config``: the run's settings as plain data, recorded in ``results.json``.
    """
    run = result.run_dir
    atomic_write_text(run / "results.csv", _csv(ATTACK_COLUMNS, result.attack_rows))
    atomic_write_text(run / "model_metrics.csv", _csv(MODEL_COLUMNS, result.model_rows))
    doc = {
        "config": config,
        "versions": versions(),
        "attacks": _nest(result.attack_rows),
        "models": _nest(result.model_rows),
        "variants": result.variant_info,
        "timings": result.timings,
        "train_seconds": result.train_times,
    }
    atomic_write_text(run / "results.json", json.dumps(doc, indent=1, allow_nan=False, default=str))
    tables = []
    for variant in variants:
        r, c, cells = audit_table(result.attack_rows, variant)
        unshadowed = any(
            row[0] == variant and row[2] == "shadow" and row[3] == "no_shadow"
            for row in result.attack_rows
        )
        tables.append(
            f"## FPR per evaluation set ({variant})\n\n"
            + (
                "No shadow model: no threshold, so no FPR (see AUROC in results.csv).\n\n"
                if unshadowed
                else ""
            )
            + markdown_table(
                r, c, cells, "set \\ attack", missing="no shadow" if unshadowed else ""
            )
        )
        atomic_write_text(run / "tables" / f"fpr_{variant}.csv", csv_table(r, c, cells))
    if len(variants) > 1:
        missing = "no shadow" if any(r[3] == "no_shadow" for r in result.attack_rows) else ""
        for attack in attacks:
            r, c, cells = variant_table(result.attack_rows, attack)
            tables.append(
                f"## {attack}: FPR per variant\n\n"
                + markdown_table(r, c, cells, "set \\ variant", missing=missing)
            )
            atomic_write_text(run / "tables" / f"variants_{attack}.csv", csv_table(r, c, cells))
    atomic_write_text(run / "tables.md", "\n".join(tables))


def csv_table(row_names: list[str], col_names: list[str], cells: dict) -> str:
    """A paper-style table as CSV: rows = evaluation sets (members first)."""
    rows = [(r, *(cells.get((r, c), "") for c in col_names)) for r in row_names]
    return _csv(("set", *col_names), rows)
