"""Benchmark: Salem's attack model on large shadow sets, sampled vs every row.

Usage::

    python benchmarks/bench_salem.py                       # fit time at N = 1e4, 1e5, 1e6
    python benchmarks/bench_salem.py --paper-up-to 100000  # also every row (the paper)
    python benchmarks/bench_salem.py --run RUN             # AUROC per set on a finished run

Above ``attacks.salem_rows`` (``FIT_ROWS``, 16,384) shadow rows the attack model
trains on a seeded sample of that many rows with the shadow's share of members;
the paper's recipe (Adam 0.01, batch 16, early stopping 15 epochs / 5e-4) is
unchanged. ``fit_times`` gives, per N, the fit time, the rows trained on, the
epochs and the AUROC on a fresh synthetic target (members more confident in
their label), for the sampled fit and, up to ``paper_up_to``, the fit on every
row. ``run_auroc`` compares the two on a finished run's saved outputs; where the
shadow set is no larger than ``FIT_ROWS`` (every preset) they are the same fit,
so it also fits on a half-size sample to show what sampling costs on real outputs.
``benchmarks/bench_scale.py`` can import both functions.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from bench_scoring import synthetic_outputs as synthetic
from sklearn.metrics import roc_auc_score

from mistrust.attacks import SalemAttack
from mistrust.attacks.salem import FIT_ROWS

SIZES = (10_000, 100_000, 1_000_000)


def _fit(shadow: tuple, target: tuple, fit_rows: int | None) -> dict:
    t0 = time.perf_counter()
    attack = SalemAttack(salem_rows=fit_rows).fit(*shadow)
    seconds = time.perf_counter() - t0
    auroc = roc_auc_score(target[2], attack.score(*target[:2]))
    return {
        "seconds": seconds,
        "rows": attack.n_fit_rows_,
        "epochs": attack.n_epochs_,
        "auroc": auroc,
    }


def fit_times(
    sizes: tuple[int, ...] = SIZES, *, paper_up_to: int = 0, target_rows: int = 200_000
) -> list[dict]:
    """Per N: ``{"n", "sampled": {...}, "paper": {...} or None}`` (seconds, rows, epochs, auroc)."""
    target = synthetic(target_rows, seed=99)
    out = []
    for n in sizes:
        shadow = synthetic(n, seed=1)
        paper = _fit(shadow, target, None) if n <= paper_up_to else None
        out.append({"n": n, "sampled": _fit(shadow, target, FIT_ROWS), "paper": paper})
    return out


def run_auroc(run: Path, variant: str = "base", seeds: tuple[int, ...] = (42,)) -> dict:
    """AUROC per evaluation set of a finished run: ``{recipe: {set: [auroc per seed]}}``
    for every shadow row (the paper), ``FIT_ROWS`` and half the shadow rows."""
    from mistrust.config import load_config
    from mistrust.pipeline.evaluate import _pair
    from mistrust.pipeline.roles import role_outputs
    from mistrust.runtime.paths import RunPaths

    paths = RunPaths(run)
    sets = list(load_config(str(paths.config)).eval.sets)
    splits = dict(np.load(paths.splits))
    sh = role_outputs(paths, variant, "shadow", splits, [])
    tg = role_outputs(paths, variant, "target", splits, sets)
    shadow = _pair(sh.members, sh.nonmembers)
    recipes = {"every row": None, f"{FIT_ROWS} rows": FIT_ROWS, "half": len(shadow[0]) // 2}
    out: dict[str, dict[str, list[float]]] = {r: {s: [] for s in sets} for r in recipes}
    for recipe, rows in recipes.items():
        for seed in seeds:
            attack = SalemAttack(seed=seed, salem_rows=rows).fit(*shadow)
            for s in sets:
                logits, labels, truth = _pair(tg.members, tg.sets[s])
                out[recipe][s].append(roc_auc_score(truth, attack.score(logits, labels)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--paper-up-to", type=int, default=0, help="also fit every row up to this N")
    ap.add_argument("--run", type=Path, help="a finished run directory: AUROC per set")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 42, 43, ... for --run")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, FIT_ROWS = {FIT_ROWS}")
    if args.run:
        res = run_auroc(args.run, seeds=tuple(range(42, 42 + args.seeds)))
        sets = list(next(iter(res.values())))
        print("| recipe | " + " | ".join(sets) + " |")
        print("|---" * (len(sets) + 1) + "|")
        for recipe, per_set in res.items():
            cells = [f"{np.mean(v):.6f}" for v in per_set.values()]
            print(f"| {recipe} | " + " | ".join(cells) + " |")
        return
    print("| N | sampled: s | rows | epochs | AUROC | every row: s | epochs | AUROC |")
    print("|---|---|---|---|---|---|---|---|")
    for r in fit_times(tuple(args.sizes), paper_up_to=args.paper_up_to):
        s, p = r["sampled"], r["paper"]
        full = f"{p['seconds']:.2f} | {p['epochs']} | {p['auroc']:.5f}" if p else "- | - | -"
        print(
            f"| {r['n']:,} | {s['seconds']:.2f} | {s['rows']:,} | {s['epochs']} "
            f"| {s['auroc']:.5f} | {full} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
