"""The console summary at the end of ``mistrust run`` (the CLI owns the console)."""

from __future__ import annotations

from mistrust.config import Config
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


def print_summary(cfg: Config, result: RunResult) -> None:
    acc: dict[tuple[str, str], float] = {}
    for v, role, ds, metric, x in result.model_rows:
        if metric == "accuracy":
            acc[(f"{v}/{role}", ds)] = x
    models = sorted({k[0] for k in acc}, key=lambda k: list(acc).index((k, "train")))
    print("\nModel accuracy")
    print(_table(models, ["train", "test"], acc, "variant/role"))
    # audited without a shadow model: no threshold, so AUROC instead of TPR / FPR
    unshadowed = any(r[2:4] == ("shadow", "no_shadow") for r in result.attack_rows)
    for variant in cfg.variants.names:
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
    if len(cfg.variants.names) > 1 and not unshadowed:
        attack = cfg.attacks.names[0]
        rows, cols, cells = variant_table(result.attack_rows, attack)
        print(f"\n{attack}: false-positive rate per variant (first row: TPR on members)")
        print(_table(rows, cols, cells, "set \\ variant"))
    total = sum(result.timings.values())
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    print(f"\nTime {total:.1f}s ({stages})")
    print(f"Results in {result.run_dir}/ (results.csv, results.json, tables.md, figures/)")
