"""Benchmark: fit every score-based attack on shadow outputs, then score and predict many rows.

Usage::

    python benchmarks/bench_scoring.py                 # print the table
    python benchmarks/bench_scoring.py --rows 200000   # smaller run
    python benchmarks/bench_scoring.py --write         # also append the table to BENCHMARKS.md

Times are wall-clock seconds, best of ``--repeat`` runs. ``predict`` recomputes
the signal; ``decide`` is the decision on already computed scores.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

from mistrust.attacks import SCORE_BASED_ATTACKS, create_attack


def synthetic_outputs(
    n: int, seed: int, n_classes: int = 10, member_shift: float = 4.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random float32 logits where members (first half) are more confident in their label:
    ``member_shift`` added to their true-class logit, 2.5 to the non-members'. The other
    scale benchmarks draw their data here too."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    is_member = np.arange(n) < n // 2
    logits = rng.normal(size=(n, n_classes)).astype(np.float32)
    logits[np.arange(n), labels] += np.where(is_member, member_shift, 2.5).astype(np.float32)
    return logits, labels, is_member


def _best(fn: Callable[[], object], repeat: int) -> float:
    """Best wall-clock time of ``repeat`` calls (least disturbed by other processes)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shadow", type=int, default=5_000, help="shadow samples (half members)")
    ap.add_argument("--rows", type=int, default=1_000_000, help="target rows to score")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = ap.parse_args()

    load0 = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    shadow = synthetic_outputs(args.shadow, seed=0, n_classes=args.classes)
    target_logits, target_labels, _ = synthetic_outputs(args.rows, seed=1, n_classes=args.classes)
    header = f"| attack | fit ({args.shadow:,}) | score | predict | decide |"
    lines = [header, "|---|---:|---:|---:|---:|"]
    totals = np.zeros(4)
    cpu0 = time.process_time()
    for name in SCORE_BASED_ATTACKS:
        attack = create_attack(name)
        t_fit = _best(lambda a=attack: a.fit(*shadow), 1)
        t_score = _best(lambda a=attack: a.score(target_logits, target_labels), args.repeat)
        t_pred = _best(lambda a=attack: a.predict(target_logits, target_labels), args.repeat)
        score = attack.score(target_logits, target_labels)
        t_dec = _best(lambda a=attack, s=score: a.decide(s), args.repeat)
        row = np.array([t_fit, t_score, t_pred, t_dec])
        totals += row
        lines.append(f"| {name} | " + " | ".join(f"{t:.3f}" for t in row) + " |")
    lines.append("| **total** | " + " | ".join(f"**{t:.3f}**" for t in totals) + " |")
    title = (
        f"### bench_scoring {date.today()}: {args.rows:,} x {args.classes} float32 logits, "
        f"seconds (best of {args.repeat}), {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    )
    cpu = time.process_time() - cpu0
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    note = f"Process CPU time for the whole table: {cpu:.1f} s; load average before/after: {load0} / {load}."
    table = "\n".join([title, "", *lines, "", note, ""])
    print(table)
    if args.write:
        path = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
        with path.open("a") as fh:
            fh.write("\n" + table)


if __name__ == "__main__":
    main()
