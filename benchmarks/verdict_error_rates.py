"""Simulation: how often the verdicts are wrong, on audits whose right answer is known.

Usage::

    python benchmarks/verdict_error_rates.py              # 50 audits per effect (~5 min)
    python benchmarks/verdict_error_rates.py --n 400 --jobs 2

Every simulated audit runs :func:`mistrust.audit` with the six score-based attacks on
``--members`` members and ``--nonmembers`` non-members of one distribution: 10-class
logits whose true-class logit gets a margin ~ N(2, 1), plus ``effect`` for the members
(0: no leakage); the inputs are i.i.d. pixel noise ``(N, 1, 8, 8)``, so the blind
baseline's AUROC is 0.5 but for chance. The shadow model's members get a margin 1 higher.
Each audit is judged twice from the same scores: with ``original`` declared i.i.d. by
construction (``iid_sets``, as a run on a one-pool dataset declares it) and without (the
default of ``mistrust.audit``). The "rules before Holm" column applies the verdict rules
as they were before the Holm adjustment and the i.i.d. flag (95 % intervals per attack; a
baseline above chance read as "distribution shift, not membership") to the same values.

Shares come with exact Clopper-Pearson 95 % intervals. docs/CHECKS.md records a run.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Mapping
from multiprocessing import get_context

import numpy as np

import mistrust
from mistrust.attacks import SCORE_BASED_ATTACKS
from mistrust.checks import blind_scores, pixel_features
from mistrust.checks.assemble import add_verdicts, check_rows, verdict_of_rows
from mistrust.metrics.intervals import clopper_pearson
from mistrust.rows import MetricRow

ORIGINAL = "original"


def _role(rng: np.random.Generator, n_in: int, n_out: int, effect: float) -> tuple:
    n = n_in + n_out
    labels = rng.integers(0, 10, n)
    logits = rng.normal(0.0, 1.0, (n, 10))
    is_member = np.arange(n) < n_in
    logits[np.arange(n), labels] += rng.normal(2.0, 1.0, n) + effect * is_member
    return logits, labels, is_member


def _old_label(c: Mapping[str, float]) -> str:
    """The verdict rules before the Holm adjustment and the i.i.d. flag, on one cell."""
    if c["flag_constant"] == 1 or c["flag_ties"] == 1 or c["flag_polarity"] == 1:
        return "inconclusive"
    if c["flag_null"] == 1:
        return "inconclusive"
    if not c["auroc_ci_low"] > 0.5:
        return "not shown"
    if c["baseline_auroc_ci_low"] > 0.5:
        return "inconclusive" if c["auroc_minus_baseline_ci_low"] > 0 else "shift"
    return "leakage shown" if c["auroc_minus_baseline_ci_low"] > 0 else "inconclusive"


def _outcome(rows: list[MetricRow]) -> dict[str, tuple[str, str]]:
    """Per attack: the verdict label on ``original`` and its reason (``attack/old``: the
    label by the rules before Holm)."""
    values = {(r.variant, r.attack, r.dataset, r.metric): r.value for r in rows}
    out = {}
    for attack in dict.fromkeys(r.attack for r in rows if r.metric == "verdict"):
        v = verdict_of_rows(values, "base", attack, ORIGINAL)
        assert v is not None and v.code == values[("base", attack, ORIGINAL, "verdict")]
        out[attack] = (v.label, v.reason)
        cell = {k[3]: x for k, x in values.items() if k[1:3] == (attack, ORIGINAL)}
        out[attack + "/old"] = (_old_label(cell), "")
        out["baseline"] = ("above chance" if cell["baseline_auroc_ci_low"] > 0.5 else "", "")
    return out


def _no_tpr_intervals(score, is_member, fprs, **_) -> list[tuple[float, float]]:
    # the verdicts never read the bootstrap intervals of TPR at low FPR: left out, they
    # save a third of each audit's time
    return [(math.nan, math.nan)] * len(fprs)


def simulate(task: tuple[int, float, int, int]) -> dict[str, dict[str, tuple[str, str]]]:
    """One simulated audit (seed, effect): the outcomes with and without the i.i.d. flag."""
    import torch

    from mistrust.checks import measure

    torch.set_num_threads(1)  # one process per core (Salem's attack model trains)
    measure.tpr_at_fpr_intervals = _no_tpr_intervals
    seed, effect, n_in, n_out = task
    rng = np.random.default_rng(seed)
    shadow = _role(rng, n_in, n_out, 1.0)
    target = _role(rng, n_in, n_out, effect)
    images = rng.normal(size=(n_in + n_out, 1, 8, 8))
    blind = {ORIGINAL: blind_scores(pixel_features(images), target[2], seed=seed)}
    r = mistrust.audit(shadow, target, baseline_scores=blind, seed=seed, iid_sets=[ORIGINAL])
    # the same scores judged without the flag: only the checks and verdicts are redone
    rows = [x for x in r.rows if x.dataset != ORIGINAL or x.metric in ("auroc", "tpr", "fpr")]
    for attack, per_set in r.scores.items():
        s = per_set[ORIGINAL]
        scored = {ORIGINAL: (s.score, s.is_member, s.predicted)}
        rows += check_rows("base", attack, scored, seed=seed, baseline=blind)
    return {"iid": _outcome(list(r.rows)), "not declared": _outcome(add_verdicts(rows))}


def _share(k: int, n: int) -> str:
    low, high = clopper_pearson(k, n, 0.05)
    return f"{k}/{n} = {k / n:.1%} [{low:.1%}, {high:.1%}]"


def report(effect: float, results: list[dict], attacks: list[str]) -> list[str]:
    n = len(results)
    lines = []
    for split in ("iid", "not declared"):
        outs = [r[split] for r in results]
        any_new = sum(any(o[a][0] == "leakage shown" for a in attacks) for o in outs)
        any_old = sum(any(o[a + "/old"][0] == "leakage shown" for a in attacks) for o in outs)
        # "not shown" blamed on shift (the rules before: "distribution shift, not
        # membership"); now an undeclared split whose baseline beats chance is inconclusive
        shift_new = sum(
            any(o[a][0] == "not shown" and "shift" in o[a][1] for a in attacks) for o in outs
        )
        shift_old = sum(any(o[a + "/old"][0] == "shift" for a in attacks) for o in outs)
        open_new = sum(
            any(o[a][1].startswith("distribution shift not ruled out") for a in attacks)
            for o in outs
        )
        baseline = sum(o["baseline"][0] == "above chance" for o in outs)
        worst = max(sum(o[a][0] == "leakage shown" for o in outs) for a in attacks)
        not_shown = [sum(o[a][0] == "not shown" for o in outs) for a in attacks]
        lines.append(
            f"| {effect:g} | {split} | {n} | {_share(baseline, n)} | {_share(any_new, n)} | "
            f"{_share(any_old, n)} | "
            f"{_share(worst, n)} | {_share(shift_new, n)} | {_share(shift_old, n)} | "
            f"{_share(open_new, n)} | "
            f"{min(not_shown) / n:.1%} to {max(not_shown) / n:.1%} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50, help="simulated audits per effect")
    ap.add_argument("--effects", type=float, nargs="+", default=[0.0, 0.3, 0.5])
    ap.add_argument("--members", type=int, default=500)
    ap.add_argument("--nonmembers", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0, help="audit i uses seed + i")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args()
    attacks = list(SCORE_BASED_ATTACKS)
    print(
        "| effect | original | audits | baseline interval above 0.5 "
        "| any attack leakage shown | same, rules before Holm "
        "| most-often-shown attack | blamed on shift | same, rules before Holm "
        "| inconclusive: shift not ruled out | not shown, per attack |"
    )
    print("|" + "---|" * 11)
    t0 = time.perf_counter()
    with get_context("fork").Pool(args.jobs) as pool:
        for effect in args.effects:
            tasks = [(args.seed + i, effect, args.members, args.nonmembers) for i in range(args.n)]
            results = []
            for r in pool.imap(simulate, tasks):
                results.append(r)
                if len(results) % 20 == 0:
                    print(f"effect {effect:g}: {len(results)} audits", file=sys.stderr, flush=True)
            for line in report(effect, results, attacks):
                print(line, flush=True)
    print(f"\n{len(args.effects) * args.n} audits in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
