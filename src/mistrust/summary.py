"""The console summary at the end of ``mistrust run`` (the CLI owns the console)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mistrust.report.tables import verdict_lines
from mistrust.results import RunResult, audit_table, variant_table


def _table(row_names: list[str], col_names: list[str], cells: dict, corner: str) -> str:
    w0 = max(len(corner), *(len(r) for r in row_names))
    widths = [max(7, len(c)) for c in col_names]
    head = (
        corner.ljust(w0)
        + "  "
        + "  ".join(c.rjust(w) for c, w in zip(col_names, widths, strict=True))
    )
    lines = [head, "-" * len(head)]
    for r in row_names:
        vals = [cells.get((r, c)) for c in col_names]
        lines.append(
            r.ljust(w0)
            + "  "
            + "  ".join(
                ("-" if x is None else f"{x:.3f}").rjust(w)
                for x, w in zip(vals, widths, strict=True)
            )
        )
    return "\n".join(lines)


def print_summary(result: RunResult, *, variants: Sequence[str], attacks: Sequence[str]) -> None:
    """Model accuracy, then the FPR tables of ``variants`` (and of the first of ``attacks``
    per variant), then the stage times."""
    acc: dict[tuple[str, str], float] = {}
    for v, role, ds, metric, x in result.model_rows:
        if metric == "accuracy":
            acc[(f"{v}/{role}", ds)] = x
    models = sorted({k[0] for k in acc}, key=lambda k: list(acc).index((k, "train")))
    print("\nModel accuracy")
    print(_table(models, ["train", "test"], acc, "variant/role"))
    # audited without a shadow model: no threshold, so AUROC instead of TPR / FPR
    unshadowed = any(r[2:4] == ("shadow", "no_shadow") for r in result.attack_rows)
    for variant in variants:
        if unshadowed:
            rows, cols, cells = audit_table(result.attack_rows, variant, "auroc")
            print(
                f"\nAUROC, members vs each evaluation set, variant {variant!r} "
                "(no shadow model: no threshold, so no TPR / FPR)"
            )
            print(_table(rows[1:], cols, cells, "set \\ attack"))
            continue
        rows, cols, cells = audit_table(result.attack_rows, variant)
        print(
            f"\nFalse-positive rate per evaluation set, variant {variant!r} "
            "(first row: TPR on members)"
        )
        print(_table(rows, cols, cells, "set \\ attack"))
    if len(variants) > 1 and not unshadowed:
        attack = attacks[0]
        rows, cols, cells = variant_table(result.attack_rows, attack)
        print(f"\n{attack}: false-positive rate per variant (first row: TPR on members)")
        print(_table(rows, cols, cells, "set \\ variant"))
    _print_verdicts(result.attack_rows)
    total = sum(result.timings.values())
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    print(f"\nTime {total:.1f}s ({stages})")
    print(f"Results in {result.run_dir}/ (results.csv, results.json, tables.md, figures/)")


def _print_verdicts(rows: list[tuple]) -> None:
    """One line per attack: its verdict on the in-distribution set (docs/CHECKS.md) and
    how many other sets it separates only by distribution shift."""
    lines = verdict_lines(rows)
    if not lines:
        return
    print(f"\nVerdicts on the in-distribution set, variant {rows[0][0]!r} (docs/CHECKS.md)")
    for attack, label, reason, notes in lines:
        shift = sum(r.startswith("distribution shift") for _, _, r in notes)
        more = f" [{shift} other set(s): distribution shift, not membership]" if shift else ""
        print(f"  {attack}: {label}: {reason}{more}")


def print_seeds_summary(run_dir: Path, *, seeds: list[str]) -> None:
    """False-positive rates across seeds (mean ± sd), from ``run_dir/results_seeds.csv``."""
    from mistrust.repeats import format_cell, read_seed_rows, seed_table

    rows = read_seed_rows(run_dir / "results_seeds.csv")
    for variant in dict.fromkeys(r[0] for r in rows):
        names, cols, cells = seed_table(rows, variant, "fpr")
        text = {k: format_cell(c, len(seeds)) for k, c in cells.items()}
        print(
            f"\nFalse-positive rate per evaluation set, variant {variant!r}, mean ± sd over "
            f"{len(seeds)} seeds (first row: TPR on members)"
        )
        print(_text_table(names, cols, text, "set \\ attack"))
    print(f"\nRuns in {run_dir}/{{{','.join(seeds)}}}/")
    print(
        f"Across seeds in {run_dir}/ (results_seeds.csv, model_metrics_seeds.csv, tables_seeds.md)"
    )


def _text_table(row_names: list[str], col_names: list[str], cells: dict, corner: str) -> str:
    w0 = max(len(corner), *(len(r) for r in row_names))
    widths = [max(len(c), *(len(cells.get((r, c), "-")) for r in row_names)) for c in col_names]
    head = (
        corner.ljust(w0)
        + "  "
        + "  ".join(c.rjust(w) for c, w in zip(col_names, widths, strict=True))
    )
    lines = [head, "-" * len(head)]
    for r in row_names:
        vals = [cells.get((r, c), "-").rjust(w) for c, w in zip(col_names, widths, strict=True)]
        lines.append(r.ljust(w0) + "  " + "  ".join(vals))
    return "\n".join(lines)
