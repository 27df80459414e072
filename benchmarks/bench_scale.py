"""Benchmark: one audit at growing sizes, stage by stage, with its log-log slope over N.

Usage::

    python benchmarks/bench_scale.py                         # N = 1e4, 1e5, 1e6
    python benchmarks/bench_scale.py --sizes 10000 100000    # smaller run
    python benchmarks/bench_scale.py --attacks threshold,loss,salem --png scale.png
    python benchmarks/bench_scale.py --sizes 1000000 --audit-only  # the goal figure alone

Data (seeded, synthetic): N shadow rows and N target rows (half members each, members
more confident in their label) and N/2 out-of-distribution rows, 10 classes, float32
logits. Every size runs in a fresh process so that its peak memory is its own.

Per size it times, on the same arrays:

* ``audit``: :func:`mistrust.audit` end to end (every trust check on), the goal figure;
* per attack: ``fit`` (shadow), ``score`` (every set), ``rank`` (the one sort per set,
  :class:`mistrust.metrics.rates.Ranked`), ``metrics`` (:func:`mistrust.metrics.attack_metrics`
  on every set) and each check of :mod:`mistrust.checks.stats` summed over the sets it runs
  on, both reading that sort as the audit does;
* ``sklearn``: ``sklearn.metrics.roc_auc_score`` on every (attack, set) score array,
  the floor reference: the ratio ``(rank + metrics) / sklearn`` says how far one set of
  every metric is from one AUROC alone.

Peak memory is the resident set's high-water mark (``VmHWM`` of /proc/self/status),
reset before each stage by writing 5 to /proc/self/clear_refs, so each stage's figure is
its own peak (whole process: the arrays already held count). Where the kernel does not
allow the reset, the figures are ``resource.getrusage``'s ``ru_maxrss``: the peak so far.
The slope is a least-squares line through ``log(audit seconds)`` against ``log N``. The
audit's CPU seconds (``time.process_time``: this process's threads, its waits for a core
left out) stand beside its wall-clock seconds: on a shared, loaded machine they say more
about the code than the wall clock does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
from bench_scoring import synthetic_outputs

from mistrust.metrics.rates import Ranked

DEFAULT_ATTACKS = "threshold,entropy,loss,modified-entropy,logit-confidence"
_STATUS, _CLEAR = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def _outputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` rows of float32 logits; the first half are members, more confident in their label."""
    return synthetic_outputs(n, seed, member_shift=3.0)


def _reset_peak() -> bool:
    try:
        _CLEAR.write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stages:
    """Seconds (wall clock and CPU) and peak resident MB per stage name (seconds summed
    over repeated calls)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu_seconds: dict[str, float] = defaultdict(float)
        self.peak_mb: dict[str, float] = defaultdict(float)

    def run(self, name: str, fn: Callable[[], object]) -> object:
        _reset_peak()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        self.seconds[name] += time.perf_counter() - t0
        self.cpu_seconds[name] += time.process_time() - c0
        self.peak_mb[name] = max(self.peak_mb[name], _peak_mb())
        return out


def _time_checks(
    st: Stages, attack: str, r: Ranked, pred: np.ndarray, *, in_distribution: bool, seed: int
) -> None:
    """Each check of :mod:`mistrust.checks.stats` as the audit runs it: on the set's sort."""
    from mistrust.checks import stats

    s, m = r.score, r.is_member
    checks: dict[str, Callable[[], object]] = {
        "auroc_interval": lambda: stats.auroc_interval(s, m, ranked=r),
        "tpr_at_fpr_intervals": lambda: stats.tpr_at_fpr_intervals(
            s, m, [0.001, 0.01], seed=seed, ranked=r
        ),
        "tie_fraction": lambda: r.largest_tie() / len(s),
        "auroc_p_value": lambda: stats.auroc_p_value(s, m, ranked=r),
    }
    if in_distribution:
        checks["null_test"] = lambda: stats.null_test(s[~m], seed=seed, order=r.order_of(~m))
        tp, fp = int((pred & m).sum()), int((pred & ~m).sum())
        checks["epsilon_lower_bound"] = lambda: stats.epsilon_lower_bound(
            tp, r.n_members, fp, r.n_nonmembers
        )
    for check, fn in checks.items():
        st.run(f"{attack}/check/{check}", fn)


def one_size(n: int, attacks: list[str], seed: int = 0, *, audit_only: bool = False) -> dict:
    """Every stage at size ``n`` (``audit_only``: the audit alone) in this process; a
    JSON-able dict."""
    from sklearn.metrics import roc_auc_score

    import mistrust
    from mistrust.attacks import create_attack
    from mistrust.attacks.signals import max_score
    from mistrust.metrics import attack_metrics

    shadow, target = _outputs(n, seed), _outputs(n, seed + 1)
    ood = _outputs(n // 2, seed + 2)[0] * 0.5  # flatter logits: a shifted non-member set
    st = Stages()
    mistrust.audit  # noqa: B018 -- import the audit's modules (torch among them) before timing
    st.run(
        "audit",
        lambda: mistrust.audit(shadow, target, eval_sets={"ood": ood}, attacks=attacks, seed=seed),
    )
    members = target[0][target[2]], target[1][target[2]]
    if audit_only:
        return _result(n, attacks, st)
    sets = {
        "original": (target[0], target[1], target[2]),
        "ood": (
            np.concatenate([members[0], ood]),
            np.concatenate([members[1], ood.argmax(1)]),
            np.arange(len(members[0]) + len(ood)) < len(members[0]),
        ),
    }
    for name in attacks:
        attack = create_attack(name, seed=seed)
        st.run(f"{name}/fit", lambda a=attack: a.fit(*shadow))
        for ds, (logits, labels, m) in sets.items():
            score = st.run(f"{name}/score", lambda a=attack, x=logits, y=labels: a.score(x, y))
            pred = attack.decide(score)
            top = max_score(logits)
            r = st.run(f"{name}/rank", lambda s=score, m=m: Ranked(s, m))
            st.run(
                f"{name}/metrics",
                lambda s=score, m=m, p=pred, t=top, r=r: attack_metrics(
                    s, m, p, max_score=t, ranked=r
                ),
            )
            st.run(f"{name}/sklearn", lambda s=score, m=m: roc_auc_score(m, s))
            _time_checks(st, name, r, pred, in_distribution=ds == "original", seed=seed)
    return _result(n, attacks, st)


def _result(n: int, attacks: list[str], st: Stages) -> dict:
    return {
        "n": n,
        "attacks": attacks,
        "seconds": dict(st.seconds),
        "cpu_seconds": dict(st.cpu_seconds),
        "peak_mb": dict(st.peak_mb),
        "peak_reset": _reset_peak(),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def slope(ns: list[int], seconds: list[float]) -> float:
    """Least-squares slope of ``log seconds`` over ``log n`` (nan with fewer than 2 sizes)."""
    if len(ns) < 2:
        return math.nan
    return float(np.polyfit(np.log(ns), np.log(seconds), 1)[0])


def _by_stage(res: dict, stage: str, attacks: list[str]) -> tuple[float, float]:
    """Seconds summed over attacks and the largest peak MB of ``*/stage`` keys."""
    keys = [f"{a}/{stage}" for a in attacks]
    return (
        sum(res["seconds"].get(k, 0.0) for k in keys),
        max((res["peak_mb"].get(k, 0.0) for k in keys), default=0.0),
    )


def table(results: list[dict]) -> str:
    attacks = results[0]["attacks"]
    checks = sorted({k.rsplit("/", 1)[1] for k in results[0]["seconds"] if "/check/" in k})
    stages = ["fit", "score", "rank", "metrics", "sklearn"] + [f"check/{c}" for c in checks]
    head = "| stage | " + " | ".join(f"N = {r['n']:,} s (peak MB)" for r in results) + " |"
    lines = [head, "|---|" + "---:|" * len(results)]
    cells = [
        f"{r['seconds']['audit']:.2f}, CPU {r['cpu_seconds']['audit']:.2f} "
        f"({r['peak_mb']['audit']:.0f})"
        for r in results
    ]
    lines.append("| **`mistrust.audit`, every check** | " + " | ".join(cells) + " |")
    if not any(k.endswith("/sklearn") for k in results[0]["seconds"]):  # --audit-only
        return "\n".join(lines)
    for stage in stages:
        cells = []
        for r in results:
            t, mb = _by_stage(r, stage, attacks)
            cells.append(f"{t:.3f} ({mb:.0f})")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    cells = []
    for r in results:
        metrics = _by_stage(r, "metrics", attacks)[0] + _by_stage(r, "rank", attacks)[0]
        floor, _ = _by_stage(r, "sklearn", attacks)
        cells.append(f"{metrics / floor:.1f}x")
    lines.append("| (rank + metrics) / sklearn | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attacks = results[0]["attacks"]
    ns = [r["n"] for r in results]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(ns, [r["seconds"]["audit"] for r in results], "o-", label="mistrust.audit")
    for stage in ("score", "rank", "metrics", "sklearn", "check/tpr_at_fpr_intervals"):
        ax.loglog(ns, [_by_stage(r, stage, attacks)[0] for r in results], ".--", label=stage)
    ref = results[0]["seconds"]["audit"]
    ax.loglog(ns, [ref * n / ns[0] for n in ns], ":", color="grey", label="slope 1")
    ax.set_xlabel("N (shadow rows = target rows; OOD rows N/2)")
    ax.set_ylabel("seconds, all attacks")
    ax.set_title(f"{len(attacks)} attacks, every trust check")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--attacks", default=DEFAULT_ATTACKS, help="comma-separated attack names")
    ap.add_argument("--png", type=Path, default=None, help="write the log-log figure here")
    ap.add_argument(
        "--audit-only", action="store_true", help="time mistrust.audit alone, not each stage"
    )
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child process
    args = ap.parse_args()
    attacks = [a for a in args.attacks.split(",") if a]
    if args.one is not None:
        print(json.dumps(one_size(args.one, attacks, audit_only=args.audit_only)))
        return

    load0 = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    results = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--attacks", ",".join(attacks)]
        cmd += ["--audit-only"] if args.audit_only else []
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        r = results[-1]
        print(
            f"N = {n:,}: audit {r['seconds']['audit']:.2f} s, CPU {r['cpu_seconds']['audit']:.2f} s",
            file=sys.stderr,
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    ns = [r["n"] for r in results]
    k = slope(ns, [r["seconds"]["audit"] for r in results])
    k_cpu = slope(ns, [r["cpu_seconds"]["audit"] for r in results])
    how = "VmHWM reset per stage" if results[0]["peak_reset"] else "ru_maxrss (peak so far)"
    print(
        f"### bench_scale {date.today()}: {', '.join(attacks)}; seconds (peak resident MB, {how})\n"
    )
    print(table(results))
    print(
        f"\nlog-log slope of `mistrust.audit` over N = {', '.join(f'{n:,}' for n in ns)}: "
        f"**{k:.2f}** (CPU seconds: {k_cpu:.2f}); {os.cpu_count()} CPUs, load average before/after: {load0} / {load}."
    )
    if args.png is not None:
        plot(results, args.png)
        print(f"\nfigure: {args.png}")


if __name__ == "__main__":
    main()
