"""Benchmark: LiRA and RMIA at scale, N audited rows x M reference models x Q queries.

Usage::

    python benchmarks/bench_reference_scale.py                   # N = 1e4, 1e5, 1e6; M = 64
    python benchmarks/bench_reference_scale.py --n 10000 100000  # smaller
    python benchmarks/bench_reference_scale.py --no-fit          # the score stage only
    python benchmarks/bench_reference_scale.py --fit-p 3125 --n  # the fit stage only

Two stages, timed apart (seconds, best of ``--repeat`` for the score):

* **score**: ``attack.score`` of N rows (the target's signal, the M reference models'
  signals and their IN mask), for LiRA online / offline with Q = 1 and 2 queries and
  RMIA online / offline with Z population samples (``--z``, 1,000 and 10,000 by default;
  RMIA has one query). The attack is fitted once per (attack, Q, Z) on a small population
  (``FIT_ROWS`` rows plus the Z rows), outside the timing.
* **fit**: ``attack.fit`` (the leave-one-out over the M models) on a population of P rows
  (``--fit-p``; by default P = 2N/M for each N: 312, 3,125 and 31,250 rows with M = 64),
  Q = 1 and 2 for LiRA, Z = P/4 for RMIA. It costs ``O(M^2 P Q)``: the reference stage's
  population holds every audited row (``mistrust.data.population``), so there P >= N.

Signals are synthetic and seeded: LiRA's ``phi`` standard normal, +1.5 where the model
trained on the row (each model IN for a random half); RMIA's probability the logistic of
``phi``. Peak RSS is the process's high-water mark during the stage (reset before it
through ``/proc/self/clear_refs``; where that is not writable, the high-water mark since
the start), and "over input" that peak minus the resident size before the stage, where
the signals are already resident: what the stage itself allocates. The score's log-log
slope over N is fitted per attack and (Q, Z).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from mistrust.attacks import REFERENCE_ATTACKS, create_reference_attack
from mistrust.attacks.reference.base import ReferenceAttack
from mistrust.attacks.reference.registry import reference_attack_class

#: population rows the score stage's attacks are fitted on (besides the z rows)
FIT_ROWS = 2_000
CHUNK = 1 << 16  # rows drawn at a time: the signals are the only large arrays


def _signals(n: int, m: int, q: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``phi (n, m, q)`` float64 and the IN mask ``(n, m)``, drawn in row chunks."""
    rng = np.random.default_rng(seed)
    phi = np.empty((n, m, q))
    in_mask = np.empty((n, m), bool)
    for i in range(0, n, CHUNK):
        j = min(n, i + CHUNK)
        in_mask[i:j] = rng.random((j - i, m)) < 0.5
        phi[i:j] = rng.standard_normal((j - i, m, q)) + 1.5 * in_mask[i:j, :, None]
    return phi, in_mask


def _prob(phi: np.ndarray) -> np.ndarray:
    """RMIA's signal ``(n, m)``: the logistic of the first query's ``phi``, in row chunks."""
    out = np.empty(phi.shape[:2])
    for i in range(0, len(phi), CHUNK):
        out[i : i + CHUNK] = 1.0 / (1.0 + np.exp(-phi[i : i + CHUNK, :, 0]))
    return out


def _rss_mib() -> tuple[float, float]:
    """(current, high-water mark) resident size of this process, MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to VmRSS
    except OSError:
        return False
    return True


def _measure(fn: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """Best seconds of ``repeat`` calls, peak RSS MiB and peak minus RSS before, MiB."""
    _reset_peak()
    before = _rss_mib()[0]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    peak = _rss_mib()[1] if Path("/proc/self/status").exists() else 0.0
    if not peak:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return min(times), peak, peak - before


def _attack_args(name: str, q: int, z: int) -> tuple[int, int]:
    return (1, z) if name.startswith("rmia") else (q, 0)


def _cases(qs: list[int], zs: list[int]) -> list[tuple[str, int, int]]:
    """(attack, Q, Z): LiRA with each Q, RMIA (one query) with each Z."""
    out = []
    for name in REFERENCE_ATTACKS:
        # a family scored against population samples z gets the synthetic signals as
        # probabilities and a Z; the others get Q queries of the Gaussian signal
        for arg in zs if reference_attack_class(name).needs_z else qs:
            out.append((name, *_attack_args(name, arg, arg)))
    return out


def _fitted(name: str, m: int, q: int, z: int, seed: int) -> ReferenceAttack:
    phi, in_mask = _signals(FIT_ROWS + z, m, q, seed)
    attack = create_reference_attack(name)
    ref = _prob(phi) if attack.needs_z else phi
    return attack.fit(ref, in_mask, z=np.arange(FIT_ROWS, FIT_ROWS + z))


def _slope(ns: list[int], seconds: list[float]) -> float:
    if len(ns) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ns), np.log(seconds), 1)[0])


def _score_stage(args: argparse.Namespace, lines: list[str]) -> None:
    m = args.models
    fitted = {c: _fitted(*c[:1], m, *c[1:], seed=1) for c in _cases(args.q, args.z)}
    times: dict[tuple, list[float]] = {c: [] for c in fitted}
    lines += [
        f"score: N rows x M = {m} models (seconds: best of {args.repeat})",
        "",
        "| attack | Q | Z | N | seconds | rows/s | peak RSS MiB | over input MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in args.n:
        phi, in_mask = _signals(n, m, max(args.q), seed=2)
        prob = _prob(phi)
        target_phi = np.random.default_rng(3).standard_normal((n, max(args.q))) + 0.5
        target_prob = 1.0 / (1.0 + np.exp(-target_phi[:, 0]))
        for (name, q, z), attack in fitted.items():
            if attack.needs_z:
                t_z = np.random.default_rng(4).uniform(0.2, 0.9, z)
                call = partial(attack.score, target_prob, prob, in_mask, target_z=t_z)
            else:
                ref = phi if q == phi.shape[2] else phi[:, :, :q]
                call = partial(attack.score, target_phi[:, :q], ref, in_mask)
            sec, peak, over = _measure(call, args.repeat)
            times[(name, q, z)].append(sec)
            lines.append(
                f"| {name} | {q} | {z or '-'} | {n:,} | {sec:.3f} | {n / sec:,.0f} | "
                f"{peak:,.0f} | {over:,.0f} |"
            )
            print(lines[-1], file=sys.stderr, flush=True)  # progress
        del phi, in_mask, prob
    lines += ["", "| attack | Q | Z | log-log slope of the score's seconds over N |"]
    lines += ["|---|---:|---:|---:|"]
    for (name, q, z), secs in times.items():
        lines.append(f"| {name} | {q} | {z or '-'} | {_slope(args.n, secs):.2f} |")


def _fit_stage(args: argparse.Namespace, lines: list[str]) -> None:
    m = args.models
    ps = args.fit_p or [max(16, 2 * n // m) for n in args.n]
    lines += [
        "",
        f"fit (leave-one-out over M = {m} models) on P population rows, Z = P/4 for RMIA",
        "",
        "| attack | Q | P | seconds | peak RSS MiB | over input MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for p in ps:
        phi, in_mask = _signals(p, m, max(args.q), seed=5)
        prob = _prob(phi)
        z = np.arange(p - p // 4, p)
        for name, q, _ in _cases(args.q, [0]):
            attack = create_reference_attack(name)
            ref = prob if attack.needs_z else phi[:, :, :q]
            sec, peak, over = _measure(partial(attack.fit, ref, in_mask, z=z), 1)
            lines.append(f"| {name} | {q} | {p:,} | {sec:.2f} | {peak:,.0f} | {over:,.0f} |")
            print(lines[-1], file=sys.stderr, flush=True)  # progress


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--models", type=int, default=64, help="reference models M")
    ap.add_argument("--q", type=int, nargs="+", default=[1, 2], help="LiRA's queries Q")
    ap.add_argument("--z", type=int, nargs="+", default=[1_000, 10_000], help="RMIA's Z")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--fit-p", type=int, nargs="*", default=None, help="fit populations P")
    ap.add_argument("--no-fit", action="store_true", help="skip the fit stage")
    args = ap.parse_args()

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"bench_reference_scale: {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, numpy {np.__version__}, "
        f"load {load} at start; peak reset per stage: {_reset_peak()}",
        "",
    ]
    t0 = time.perf_counter()
    if args.n:
        _score_stage(args, lines)
    if not args.no_fit:
        _fit_stage(args, lines)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines += ["", f"{time.perf_counter() - t0:.0f} s in all, load {load} at the end"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
