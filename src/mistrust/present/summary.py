"""The console summary at the end of ``mistrust run`` (the CLI owns the console).

The tables are those of :mod:`mistrust.present.tables`, written with its console renderer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mistrust.present.results import RunResult
from mistrust.present.tables import Table, fpr_table, set_table, variant_fpr_table
from mistrust.present.tables.formats import to_text
from mistrust.present.tables.model import no_shadow, ordered
from mistrust.present.tables.privacy import privacy_findings, privacy_table
from mistrust.present.tables.strongest import strongest_lines
from mistrust.present.tables.verdicts import epsilon_table, reason_groups
from mistrust.rows import MetricRow
from mistrust.runtime.paths import RunPaths


def _accuracy(result: RunResult) -> Table:
    """Train and test accuracy per ``variant/role``, in the order the models were run."""
    acc = {
        (f"{r.variant}/{r.role}", r.dataset): r.value
        for r in result.model_rows
        if r.metric == "accuracy"
    }
    models = sorted({k[0] for k in acc}, key=lambda k: list(acc).index((k, "train")))
    return Table("accuracy", "Model accuracy", models, ["train", "test"], dict(acc), "variant/role")


def print_summary(
    result: RunResult, *, variants: Sequence[str], attacks: Sequence[str], report: bool = True
) -> None:
    """Model accuracy, then the FPR tables of ``variants`` (and of the first of ``attacks``
    per variant), the verdicts, the stage times and the files written (``report``: whether
    this run built ``report.html``)."""
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
    _print_strongest(rows, variants)
    _print_privacy(result)
    total = sum(result.timings.values())
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    print(f"\nTime {total:.1f}s ({stages})")
    paths = RunPaths(result.run_dir)
    print(f"Results in {result.run_dir}/ ({', '.join(_written(paths, report))})")
    if not report:
        print(f"No report.html (--no-report): mistrust report {result.run_dir} builds it")


def _written(paths: RunPaths, report: bool) -> list[str]:
    """The result files of this run in its directory: report.html only where it was built,
    figures/ only where something was drawn (an audit of saved outputs draws nothing)."""
    files = [paths.results_csv, paths.results_json, paths.tables_md]
    files += [paths.report_html] if report else []
    names = [p.name for p in files if p.is_file()]
    return names + (["figures/"] if paths.figures_dir.is_dir() else [])


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
    """The verdicts of the first variant told together, one line per rule that decided
    them (docs/CHECKS.md), then each attack's epsilon lower bound."""
    if not rows:
        return
    v = rows[0].variant
    groups = reason_groups(rows, v)
    if not groups:
        return
    print(f"\nVerdicts, variant {v!r} (docs/CHECKS.md; every reason in report.html)")
    width = max(len(g.label) for g in groups)
    for g in groups:
        print(f"  {g.label.ljust(width)}  {g.where}: {g.why}")
    eps = epsilon_table(rows, v)
    if eps is not None:
        print(f"\n{eps.title}: {eps.note}")
        print(to_text(eps))


def _print_strongest(rows: Sequence[MetricRow], variants: Sequence[str]) -> None:
    """The strongest attack of each variant against its runner-up (docs/CHECKS.md)."""
    lines = strongest_lines(rows, variants)
    if lines:
        print("\n" + "\n".join(lines))


def print_seeds_summary(run_dir: Path, *, seeds: list[str]) -> None:
    """False-positive rates across seeds (mean ± sd), from ``run_dir/results_seeds.csv``."""
    from mistrust.present.repeats import read_seed_rows, seed_cells, seed_table

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
