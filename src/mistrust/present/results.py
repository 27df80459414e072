"""A run's results as files: the tidy CSVs, ``results.json``, ``tables.md`` and ``tables/*.csv``.

The rows are typed (:mod:`mistrust.rows`); the tables are built by
:mod:`mistrust.present.tables` and only formatted here.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mistrust.io import atomic_write_text
from mistrust.present.tables import fpr_table, variant_fpr_table
from mistrust.present.tables.formats import markdown, tidy_csv, to_csv
from mistrust.rows import MetricRow, ModelRow, find_value
from mistrust.runtime.paths import RunPaths

__all__ = ["ATTACK_COLUMNS", "MODEL_COLUMNS", "RunResult", "tidy_csv", "write_results"]

ATTACK_COLUMNS = MetricRow._fields  # ("variant", "attack", "dataset", "metric", "value")
MODEL_COLUMNS = ModelRow._fields  # ("variant", "role", "dataset", "metric", "value")


@dataclass
class RunResult:
    run_dir: Path
    attack_rows: list[MetricRow] = field(default_factory=list)
    model_rows: list[ModelRow] = field(default_factory=list)
    variant_info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    train_times: dict[str, float] = field(default_factory=dict)

    def value(self, *key: str, variant: str | None = None) -> float:
        """``value(attack, dataset, metric, variant=...)`` as ``AuditResult.value``; without
        ``variant``, the first variant's. ``value(variant, attack, dataset, metric)`` still
        works. ``KeyError`` if the run has no such row."""
        return find_value(self.attack_rows, key, variant)


def _nest(rows: Sequence[MetricRow | ModelRow]) -> dict[str, Any]:
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


def write_results(
    result: RunResult, *, variants: Sequence[str], attacks: Sequence[str], config: dict[str, Any]
) -> None:
    """Write ``results.csv``, ``model_metrics.csv``, ``results.json`` and the tables.

    ``variants`` / ``attacks``: the run's names, in the order the tables show them;
    ``config``: the run's settings as plain data, recorded in ``results.json``.
    """
    run = RunPaths(result.run_dir)
    atomic_write_text(run.results_csv, tidy_csv(ATTACK_COLUMNS, result.attack_rows))
    atomic_write_text(run.model_metrics_csv, tidy_csv(MODEL_COLUMNS, result.model_rows))
    doc = {
        "config": config,
        "versions": versions(),
        "attacks": _nest(result.attack_rows),
        "models": _nest(result.model_rows),
        "variants": result.variant_info,
        "timings": result.timings,
        "train_seconds": result.train_times,
    }
    atomic_write_text(run.results_json, json.dumps(doc, indent=1, allow_nan=False, default=str))
    rows = result.attack_rows
    sections = []
    for i, variant in enumerate(variants):
        t = fpr_table(rows, variant, i)
        sections.append(
            f"## FPR per evaluation set ({variant})\n\n"
            + (
                "No shadow model: no threshold, so no FPR (see AUROC in results.csv).\n\n"
                if t.missing
                else ""
            )
            + markdown(t)
        )
        atomic_write_text(run.table(f"fpr_{variant}", "csv"), to_csv(t))
    if len(variants) > 1:
        for attack in attacks:
            t = variant_fpr_table(rows, attack)
            sections.append(f"## {attack}: FPR per variant\n\n" + markdown(t))
            atomic_write_text(run.table(f"variants_{attack}", "csv"), to_csv(t))
    atomic_write_text(run.tables_md, "\n".join(sections))
