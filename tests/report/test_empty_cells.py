"""An empty value cell of ``results.csv`` (a value that was not measured, e.g. TPR at an
FPR the non-members cannot resolve, written by another tool as "") reads as NaN in every
reader: the tables, the report, ``mistrust compare``, the aggregation across seeds and
``mistrust diff``."""

from __future__ import annotations

import math
from pathlib import Path

from mistrust.present.repeats import aggregate, read_seed_rows
from mistrust.present.tables import read_attack_rows
from mistrust.present.tables.model import read_value

HEADER = "variant,attack,dataset,metric,value\n"
ROWS = (
    "base,threshold,original,tpr,0.75\n"
    "base,threshold,original,fpr,0.5\n"
    "base,threshold,original,auroc,0.6\n"
    "base,threshold,original,tpr_at_0.1fpr,\n"
    "base,threshold,original,tpr_at_1fpr,nan\n"
    "base,threshold,original,min_resolvable_fpr,0.02\n"
    "base,threshold,shadow,operating_score,0.99996\n"
)


def _run(tmp: Path, text: str = HEADER + ROWS) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "results.csv").write_text(text)
    return tmp


def test_read_value() -> None:
    assert read_value("0.25") == 0.25
    assert math.isnan(read_value("")) and math.isnan(read_value("nan"))
    assert math.isnan(read_value("  "))


def test_an_empty_cell_is_nan_in_the_tables_and_the_report(tmp_path: Path) -> None:
    from mistrust.present.report import build_report

    run = _run(tmp_path / "run")
    rows = read_attack_rows(run)
    value = {r.metric: r.value for r in rows if r.dataset == "original"}
    assert math.isnan(value["tpr_at_0.1fpr"]) and math.isnan(value["tpr_at_1fpr"])
    page = build_report(run).read_text()
    assert "n/r" in page and "0.99996" in page  # unresolved, and the threshold's digits


def test_an_empty_cell_is_left_out_across_seeds(tmp_path: Path) -> None:
    a = read_attack_rows(_run(tmp_path / "a"))
    b = read_attack_rows(
        _run(tmp_path / "b", HEADER + ROWS.replace("tpr_at_0.1fpr,", "tpr_at_0.1fpr,0.1"))
    )
    seeds = {r.metric: r for r in aggregate([a, b])}
    assert (seeds["tpr_at_0.1fpr"].n, seeds["tpr_at_0.1fpr"].mean) == (1, 0.1)
    assert seeds["tpr_at_1fpr"].n == 0 and math.isnan(seeds["tpr_at_1fpr"].mean)
    path = tmp_path / "results_seeds.csv"
    path.write_text(
        "variant,attack,dataset,metric,n,mean,sd\nbase,threshold,original,tpr_at_1fpr,0,,\n"
    )
    [row] = read_seed_rows(path)
    assert row.n == 0 and math.isnan(row.mean) and math.isnan(row.sd)


def test_compare_skips_an_empty_cell() -> None:
    from mistrust.present.compare import PaperTable, compare_rows
    from mistrust.rows import MetricRow

    table = PaperTable("p", "base", None, None, {("threshold", "Original", "fpr_at_95tpr"): 0.9})
    ours = [MetricRow("base", "threshold", "original", "fpr_at_95tpr", read_value(""))]
    assert compare_rows([table], ours, []) == []
