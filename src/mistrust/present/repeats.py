"""A study repeated over seeds: the sub-run directories and mean ± sd of every metric.

``mistrust run --seeds K`` runs the whole study K times, with seeds ``seed``, ``seed + 1``,
..., each into ``RUN/seed-<seed>/`` (a complete run directory of its own), then writes
into ``RUN``:

* ``results_seeds.csv``: per ``(variant, attack, dataset, metric)`` of the sub-runs'
  ``results.csv``, the number of seeds with a value ``n``, its ``mean`` and sample
  standard deviation ``sd`` (ddof 1; NaN for fewer than two values). A NaN value (a
  metric undefined for that seed) is left out of ``n``, mean and sd.
* ``model_metrics_seeds.csv``: the same for ``model_metrics.csv``.
* ``tables_seeds.md``: false-positive rate and AUROC per set and attack, mean ± sd.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mistrust.io import atomic_write_text
from mistrust.present.tables import Table, read_attack_rows, read_model_rows, set_table
from mistrust.present.tables.formats import markdown, tidy_csv
from mistrust.present.tables.model import ordered, read_value
from mistrust.rows import MetricRow, ModelRow, ModelSeedRow, SeedRow
from mistrust.runtime.paths import RunPaths

__all__ = [
    "MODEL_SEED_COLUMNS",
    "SEED_COLUMNS",
    "aggregate",
    "format_cell",
    "read_seed_rows",
    "seed_dir",
    "seed_dirs",
    "seed_table",
    "write_seed_results",
]

SEED_COLUMNS = SeedRow._fields  # ("variant", "attack", "dataset", "metric", "n", "mean", "sd")
MODEL_SEED_COLUMNS = ModelSeedRow._fields  # ("variant", "role", ...)
_SEED_DIR = re.compile(r"seed-(\d+)")


def seed_dir(run_dir: Path, seed: int) -> Path:
    """Where the repeat with ``seed`` runs: ``run_dir/seed-<seed>``."""
    return RunPaths(run_dir).seed_run(seed).root


def seed_dirs(run_dir: Path) -> list[Path]:
    """The ``seed-<n>`` sub-directories of ``run_dir`` that hold a ``results.csv``, by seed."""
    found = []
    for p in Path(run_dir).iterdir() if Path(run_dir).is_dir() else []:
        m = _SEED_DIR.fullmatch(p.name)
        if m and RunPaths(p).results_csv.is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def aggregate(
    per_seed: Sequence[Sequence[MetricRow | ModelRow]], row: type[SeedRow | ModelSeedRow] = SeedRow
) -> list:
    """Mean and sd across seeds of tidy rows ``(a, b, c, metric, value)``.

    Args:
        per_seed: one list of rows per seed (``results.csv`` or ``model_metrics.csv``).
        row: the type of the rows returned (:class:`ModelSeedRow` for model rows).

    Returns:
        ``row(a, b, c, metric, n, mean, sd)`` per key, in order of first appearance; ``n``
        counts the seeds with a non-NaN value; ``sd`` has ddof 1 (NaN for ``n < 2``);
        ``mean`` is NaN for ``n = 0``.
    """
    values: dict[tuple, list[float]] = {}
    for rows in per_seed:
        for *key, value in rows:
            values.setdefault(tuple(key), [])
            if not math.isnan(value):
                values[tuple(key)].append(float(value))
    out = []
    for key, xs in values.items():
        arr = np.array(xs, dtype=np.float64)
        mean = float(arr.mean()) if len(arr) else math.nan
        sd = float(arr.std(ddof=1)) if len(arr) > 1 else math.nan
        out.append(row(*key, len(arr), mean, sd))
    return out


def read_seed_rows(path: Path, row: type[SeedRow | ModelSeedRow] = SeedRow) -> list:
    """The rows of ``results_seeds.csv`` (``model_metrics_seeds.csv`` with
    ``row=ModelSeedRow``); [] if missing."""
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        return [row(*r[:4], int(r[4]), read_value(r[5]), read_value(r[6])) for r in reader if r]


def seed_table(rows: Sequence[SeedRow], variant: str, metric: str) -> Table:
    """The table of :func:`mistrust.present.tables.set_table` for mean, sd and n across seeds:
    evaluation sets as rows (members' TPR first for ``fpr``), attacks as columns, cells
    ``(n, mean, sd)``; :func:`seed_cells` writes them as text."""
    tables = {
        part: set_table(
            [MetricRow(r.variant, r.attack, r.dataset, r.metric, getattr(r, part)) for r in rows],
            variant=variant,
            metric=metric,
        )
        for part in ("n", "mean", "sd")
    }
    t = tables["mean"]
    t.cells = {k: (int(tables["n"].cells[k]), x, tables["sd"].cells[k]) for k, x in t.cells.items()}
    return t


def seed_cells(t: Table, seeds: int) -> Table:
    """``t`` with every cell written by :func:`format_cell` ("–" where absent)."""
    cells = {(r, c): format_cell(t.cells.get((r, c)), seeds) for r in t.rows for c in t.cols}
    return Table(t.key, t.title, t.rows, t.cols, cells, t.corner, group=t.group)


def format_cell(cell: tuple[int, float, float] | None, seeds: int, digits: int = 3) -> str:
    """``mean ± sd``; ``(n=k)`` appended where fewer than ``seeds`` seeds have a value."""
    if cell is None or cell[0] == 0:
        return "–"
    n, mean, sd = cell
    text = f"{mean:.{digits}f}" + ("" if math.isnan(sd) else f" ± {sd:.{digits}f}")
    return text + ("" if n == seeds else f" (n={n})")


def _markdown(rows: list[SeedRow], seeds: int) -> str:
    out = []
    for v in ordered(r.variant for r in rows):
        for metric, title in (("fpr", "FPR per evaluation set"), ("auroc", "AUROC")):
            t = seed_table(rows, v, metric)
            if not t.cells:
                continue
            out.append(f"## {title} ({v}), mean ± sd over {seeds} seeds\n")
            out.append(markdown(seed_cells(t, seeds)))
    return "\n".join(out)


def write_seed_results(run_dir: Path, runs: Sequence[Path]) -> list[SeedRow]:
    """Aggregate the sub-runs ``runs`` into ``run_dir`` (the files of the module doc).

    Returns the rows of ``results_seeds.csv``.
    """
    paths, subs = RunPaths(run_dir), [RunPaths(p) for p in runs]
    rows = aggregate([read_attack_rows(p) for p in subs if p.results_csv.is_file()])
    model = aggregate([read_model_rows(p) for p in subs], ModelSeedRow)
    atomic_write_text(paths.results_seeds_csv, tidy_csv(SEED_COLUMNS, rows))
    atomic_write_text(paths.model_metrics_seeds_csv, tidy_csv(MODEL_SEED_COLUMNS, model))
    atomic_write_text(paths.tables_seeds_md, _markdown(rows, len(runs)))
    return rows
