"""The console summary at the end of ``mistrust run`` (the CLI owns the console).

The tables are those of :mod:`mistrust.tables`, written with its console renderer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mistrust.results import RunResult
from mistrust.rows import MetricRow
from mistrust.run_paths import RunPaths
from mistrust.tables import Table, fpr_table, set_table, variant_fpr_table
from mistrust.tables.findings import verdict_lines
from mistrust.tables.formats import to_text
from mistrust.tables.model import no_shadow, ordered
from mistrust.tables.privacy import privacy_findings, privacy_table


def _accuracy(result: RunResult) -> Table:
    """Train and test accuracy per ``variant/role``, in the order the models were run."""
    acc = {
        (f"{r.variant}/{r.role}", r.dataset): r.value
        for r in result.model_rows
        if r.metric == "accuracy"
    }
    models = sorted({k[0] for k in acc}, key=lambda k: list(acc).index((k, "train")))
    return Table("accuracy", "Model accuracy", models, ["train", "test"], dict(acc), "variant/role")


def print_summary(result: RunResult, *, variants: Sequence[str], attacks: Sequence[str]) -> None:
    """Model accuracy, then the FPR tables of ``variants`` (and of the first of ``attacks``
    per variant), then the stage times."""
    rows = result.attack_rows
    print("\nModel accuracy")
    print(to_text(_accuracy(result)))
    # audited without a shadow model: no threshold, so AUROC instead of TPR / FPR
    unshadowed = no_shadow(rows)
    for variant in variants:
        if unshadowed:
            print(
                f"\nAUROC, members vs each evaluation set, variant {variant!r} "
                "(no shadow model: no threshold, so no TPR / FPR)"
            )
            print(to_text(set_table(rows, variant=variant, metric="auroc")))
            continue
        print(
            f"\nFalse-positive rate per evaluation set, variant {variant!r} "
            "(first row: TPR on members)"
        )
        print(to_text(fpr_table(rows, variant)))
    if len(variants) > 1 and not unshadowed:
        attack = attacks[0]
        print(f"\n{attack}: false-positive rate per variant (first row: TPR on members)")
        print(to_text(variant_fpr_table(rows, attack)))
    _print_verdicts(rows)
    _print_privacy(result)
    total = sum(result.timings.values())
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    print(f"\nTime {total:.1f}s ({stages})")
    print(f"Results in {result.run_dir}/ (results.csv, results.json, tables.md, figures/)")


def _print_privacy(result: RunResult) -> None:
    """The accountant's epsilon beside the empirical bounds, where the run has DP variants
    or canaries (docs/DP.md), and any DP violation."""
    table = privacy_table(result.attack_rows, result.model_rows)
    if table is None:
        return
    print(f"\n{table.title}")
    print(to_text(table))
    for line in privacy_findings(result.attack_rows, result.model_rows):
        print(f"  DP violation: {line}")


def _print_verdicts(rows: Sequence[MetricRow]) -> None:
    """One line per attack: its verdict on the in-distribution set (docs/CHECKS.md) and
    how many other sets it separates only by distribution shift."""
    lines = verdict_lines(rows)
    if not lines:
        return
    print(f"\nVerdicts on the in-distribution set, variant {rows[0].variant!r} (docs/CHECKS.md)")
    for line in lines:
        shift = sum(r.startswith("distribution shift") for _, _, r in line.notes)
        more = f" [{shift} other set(s): distribution shift, not membership]" if shift else ""
        print(f"  {line.attack}: {line.label}: {line.reason}{more}")


def print_seeds_summary(run_dir: Path, *, seeds: list[str]) -> None:
    """False-positive rates across seeds (mean ± sd), from ``run_dir/results_seeds.csv``."""
    from mistrust.repeats import read_seed_rows, seed_cells, seed_table

    rows = read_seed_rows(RunPaths(run_dir).results_seeds_csv)
    for variant in ordered(r.variant for r in rows):
        t = seed_table(rows, variant, "fpr")
        # only the cells the runs hold: an absent one is "-", as in the other console tables
        text = seed_cells(t, len(seeds))
        text.cells = {k: x for k, x in text.cells.items() if k in t.cells}
        print(
            f"\nFalse-positive rate per evaluation set, variant {variant!r}, mean ± sd over "
            f"{len(seeds)} seeds (first row: TPR on members)"
        )
        print(to_text(text, min_width=0))
    print(f"\nRuns in {run_dir}/{{{','.join(seeds)}}}/")
    print(
        f"Across seeds in {run_dir}/ (results_seeds.csv, model_metrics_seeds.csv, tables_seeds.md)"
    )
