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
from mistrust.results import audit_table, tidy_csv
from mistrust.run_paths import RunPaths

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

SEED_COLUMNS = ("variant", "attack", "dataset", "metric", "n", "mean", "sd")
MODEL_SEED_COLUMNS = ("variant", "role", "dataset", "metric", "n", "mean", "sd")
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


def aggregate(per_seed: Sequence[Sequence[tuple]]) -> list[tuple]:
    """Mean and sd across seeds of tidy rows ``(a, b, c, metric, value)``.

    Args:
        per_seed: one list of rows per seed (``results.csv`` or ``model_metrics.csv``).

    Returns:
        ``(a, b, c, metric, n, mean, sd)`` per key, in order of first appearance; ``n``
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
        out.append((*key, len(arr), mean, sd))
    return out


def _read_tidy(path: Path) -> list[tuple]:
    """Rows ``(a, b, c, metric, value)`` of a tidy CSV (``results.csv``); [] if missing."""
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        return [(*r[:4], float(r[4])) for r in reader if r]


def read_seed_rows(path: Path) -> list[tuple]:
    """Rows ``(a, b, c, metric, n, mean, sd)`` of ``results_seeds.csv``; [] if missing."""
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        return [(*r[:4], int(r[4]), float(r[5]), float(r[6])) for r in reader if r]


def seed_table(
    rows: Sequence[tuple], variant: str, metric: str
) -> tuple[list[str], list[str], dict[tuple[str, str], tuple[int, float, float]]]:
    """``(row names, attacks, {(row, attack): (n, mean, sd)})`` of aggregated ``rows``:
    evaluation sets as rows (members' TPR first for ``fpr``), as :func:`results.audit_table`."""
    means = [(v, a, d, m, x) for v, a, d, m, _, x, _ in rows]
    r, c, mean = audit_table(means, variant, metric)
    _, _, sd = audit_table([(v, a, d, m, x) for v, a, d, m, _, _, x in rows], variant, metric)
    _, _, n = audit_table([(v, a, d, m, k) for v, a, d, m, k, _, _ in rows], variant, metric)
    if metric != "fpr":
        r = r[1:]  # the members' row is TPR, shown with the false-positive rates only
    return r, c, {k: (int(n[k]), mean[k], sd[k]) for k in mean if k[0] in r}


def format_cell(cell: tuple[int, float, float] | None, seeds: int, digits: int = 3) -> str:
    """``mean ± sd``; ``(n=k)`` appended where fewer than ``seeds`` seeds have a value."""
    if cell is None or cell[0] == 0:
        return "–"
    n, mean, sd = cell
    text = f"{mean:.{digits}f}" + ("" if math.isnan(sd) else f" ± {sd:.{digits}f}")
    return text + ("" if n == seeds else f" (n={n})")


def _markdown(rows: list[tuple], seeds: int) -> str:
    out = []
    variants = list(dict.fromkeys(r[0] for r in rows))
    for v in variants:
        for metric, title in (("fpr", "FPR per evaluation set"), ("auroc", "AUROC")):
            r, c, cells = seed_table(rows, v, metric)
            if not cells:
                continue
            out.append(f"## {title} ({v}), mean ± sd over {seeds} seeds\n")
            out.append("| " + " | ".join(["set \\ attack", *c]) + " |")
            out.append("|" + "---|" * (len(c) + 1))
            out += [
                "| " + " | ".join([x, *(format_cell(cells.get((x, a)), seeds) for a in c)]) + " |"
                for x in r
            ]
            out.append("")
    return "\n".join(out)


def write_seed_results(run_dir: Path, runs: Sequence[Path]) -> list[tuple]:
    """Aggregate the sub-runs ``runs`` into ``run_dir`` (the files of the module doc).

    Returns the rows of ``results_seeds.csv``.
    """
    paths, subs = RunPaths(run_dir), [RunPaths(p) for p in runs]
    rows = aggregate([_read_tidy(p.results_csv) for p in subs])
    model = aggregate([_read_tidy(p.model_metrics_csv) for p in subs])
    atomic_write_text(paths.results_seeds_csv, tidy_csv(SEED_COLUMNS, rows))
    atomic_write_text(paths.model_metrics_seeds_csv, tidy_csv(MODEL_SEED_COLUMNS, model))
    atomic_write_text(paths.tables_seeds_md, _markdown(rows, len(runs)))
    return rows
