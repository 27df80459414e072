"""Aggregation across seeds (``mistrust.present.repeats``) and its report, on hand-made results."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from mistrust.present.repeats import (
    aggregate,
    format_cell,
    seed_cells,
    seed_dirs,
    seed_table,
    write_seed_results,
)

SEED_ROWS = [
    [
        ("base", "threshold", "original", "tpr", 0.6),
        ("base", "threshold", "original", "fpr", 0.2),
        ("base", "threshold", "scaled", "fpr", 1.0),
        ("base", "threshold", "original", "auroc", math.nan),
    ],
    [
        ("base", "threshold", "original", "tpr", 0.7),
        ("base", "threshold", "original", "fpr", 0.4),
        ("base", "threshold", "scaled", "fpr", math.nan),  # undefined for this seed
        ("base", "threshold", "original", "auroc", math.nan),
    ],
    [
        ("base", "threshold", "original", "tpr", 0.8),
        ("base", "threshold", "original", "fpr", 0.9),
        ("base", "threshold", "original", "auroc", math.nan),
        ("base", "threshold", "scaled", "fpr", 1.0),
        ("base", "loss", "original", "fpr", 0.3),  # only this seed ran it
    ],
]


def _by_key(rows: list[tuple]) -> dict[tuple, tuple]:
    return {r[:4]: r[4:] for r in rows}


def test_mean_and_sample_sd_by_hand() -> None:
    got = _by_key(aggregate(SEED_ROWS))
    n, mean, sd = got[("base", "threshold", "original", "fpr")]
    # 0.2, 0.4, 0.9: mean 0.5; deviations -0.3, -0.1, 0.4; sum of squares 0.26 over 2
    assert n == 3 and mean == pytest.approx(0.5) and sd == pytest.approx(math.sqrt(0.13))
    n, mean, sd = got[("base", "threshold", "original", "tpr")]
    assert (n, mean, sd) == (3, pytest.approx(0.7), pytest.approx(0.1))
    n, mean, sd = got[("base", "threshold", "scaled", "fpr")]  # the NaN seed is left out
    assert (n, mean) == (2, 1.0) and sd == 0.0
    n, mean, sd = got[("base", "loss", "original", "fpr")]
    assert (n, mean) == (1, 0.3) and math.isnan(sd)
    n, mean, sd = got[("base", "threshold", "original", "auroc")]
    assert n == 0 and math.isnan(mean) and math.isnan(sd)


def test_keys_keep_their_first_order() -> None:
    keys = [r[:4] for r in aggregate(SEED_ROWS)]
    assert keys == [
        ("base", "threshold", "original", "tpr"),
        ("base", "threshold", "original", "fpr"),
        ("base", "threshold", "scaled", "fpr"),
        ("base", "threshold", "original", "auroc"),
        ("base", "loss", "original", "fpr"),
    ]  # scaled's fpr appeared in the first seed, loss only in the third


def test_cells_say_mean_sd_and_missing_seeds() -> None:
    assert format_cell((3, 0.5, 0.1), 3) == "0.500 ± 0.100"
    assert format_cell((2, 1.0, 0.0), 3) == "1.000 ± 0.000 (n=2)"
    assert format_cell((1, 0.3, math.nan), 3) == "0.300 (n=1)"
    assert format_cell((0, math.nan, math.nan), 3) == "–"
    assert format_cell(None, 3) == "–"


def test_seed_table_is_the_audit_table_layout() -> None:
    t = seed_table(aggregate(SEED_ROWS), "base", "fpr")
    assert t.rows == ["members (TPR)", "original", "scaled"] and t.cols == ["threshold", "loss"]
    assert t.cells[("members (TPR)", "threshold")] == (3, pytest.approx(0.7), pytest.approx(0.1))
    assert t.cells[("original", "loss")] == (1, 0.3, pytest.approx(math.nan, nan_ok=True))
    assert ("scaled", "loss") not in t.cells  # loss never ran on scaled
    assert seed_cells(t, 3).cells[("scaled", "loss")] == "–"
    t = seed_table(aggregate(SEED_ROWS), "base", "auroc")
    assert t.rows == ["original"] and t.cells[("original", "threshold")][0] == 0


def _write(path: Path, rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("variant", "attack", "dataset", "metric", "value"))
        w.writerows([(*r[:4], repr(r[4])) for r in rows])


def test_files_and_report_across_seeds(tmp_path: Path) -> None:
    from mistrust.present.report import build_report

    for seed, rows in zip((9, 10, 11), SEED_ROWS, strict=True):
        _write(tmp_path / f"seed-{seed}" / "results.csv", rows)
    (tmp_path / "seed-12").mkdir()  # no results: not a finished repeat
    assert [p.name for p in seed_dirs(tmp_path)] == ["seed-9", "seed-10", "seed-11"]
    write_seed_results(tmp_path, seed_dirs(tmp_path))
    with (tmp_path / "results_seeds.csv").open() as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == ["variant", "attack", "dataset", "metric", "n", "mean", "sd"]
    fpr = next(r for r in got if (r["dataset"], r["metric"]) == ("original", "fpr"))
    assert (fpr["n"], float(fpr["mean"])) == ("3", pytest.approx(0.5))
    assert (
        "| original | 0.500 ± 0.361 | 0.300 (n=1) |" in (tmp_path / "tables_seeds.md").read_text()
    )
    (tmp_path / "config.yaml").write_text("name: study\nseed: 9\nseeds: 3\n")
    (tmp_path / "seed-10" / "report.html").write_text("")
    page = build_report(tmp_path).read_text()
    assert "mistrust audit: study, 3 seeds" in page
    assert "<td>0.500 ± 0.361</td>" in page
    # a link only where the seed has its report
    assert 'seeds: 9, <a href="seed-10/report.html">10</a>, 11</p>' in page
    assert (tmp_path / "report.md").read_text().startswith("# mistrust audit: study, 3 seeds")
