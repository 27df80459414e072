"""Benchmark: the blind baseline (pooled pixels, cross-fitted logistic regression) at scale.

Usage::

    python benchmarks/bench_blind_scale.py                       # N = 1e4, 1e5, 1e6
    python benchmarks/bench_blind_scale.py --sizes 10000 100000  # smaller run
    python benchmarks/bench_blind_scale.py --compare-src OLD/src --compare-max 100000

Every N runs in a fresh process, so that its peak RSS is its own: synthetic 28 x 28 uint8
images (seeded; a 7 x 7 random pattern scaled up plus pixel noise, so that the pooled
features are correlated as those of real images are), the first half members, the
second half non-members of the same distribution. Stages: ``inputs`` (making them),
``features`` (:func:`mistrust.checks.pixel_features`), ``fit``
(:func:`mistrust.checks.blind_scores`); time in seconds and the process's peak RSS after
the stage (``start``: after the imports). ``auroc`` is the baseline's AUROC (about 0.5: the sets do not differ), with
scikit-learn's ``roc_auc_score`` on the same arrays and its time as the floor reference.
The slope is that of log(features + fit time) over log(N). With ``--compare-src``, the
same N up to ``--compare-max`` also run with that source tree first on ``PYTHONPATH``
(e.g. an older checkout), alternately with this one, so a ratio is measured under one
load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

_SRC = str(Path(__file__).resolve().parents[1] / "src")


def _child(n: int, seed: int) -> None:
    """One N, in this process: print a JSON line of times and peak RSS per stage."""
    import resource
    import time

    import torch
    import torch.nn.functional as F
    from sklearn.metrics import roc_auc_score

    from mistrust.checks import blind_scores, pixel_features
    from mistrust.metrics import auroc

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    out: dict[str, float] = {"n": n, "rss_start_mb": peak_mb()}
    t = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    x = torch.empty((n, 1, 28, 28), dtype=torch.uint8)
    for s in range(0, n, 8192):  # made in blocks: float images of all N never exist
        k = min(8192, n - s)
        pattern = torch.rand((k, 1, 7, 7), generator=g) * 255
        img = F.interpolate(pattern, size=28, mode="bilinear") + 20 * torch.randn(
            (k, 1, 28, 28), generator=g
        )
        x[s : s + k] = img.clamp(0, 255).to(torch.uint8)
    is_member = np.arange(n) < n // 2
    out["inputs_s"], out["inputs_rss_mb"] = time.perf_counter() - t, peak_mb()

    t = time.perf_counter()
    features = pixel_features(x)
    out["features_s"], out["features_rss_mb"] = time.perf_counter() - t, peak_mb()
    t = time.perf_counter()
    scores = blind_scores(features, is_member, seed=seed)
    out["fit_s"], out["fit_rss_mb"] = time.perf_counter() - t, peak_mb()

    t = time.perf_counter()
    out["auroc"] = float(auroc(scores, is_member))
    out["auroc_s"] = time.perf_counter() - t
    t = time.perf_counter()
    out["sklearn_auroc"] = float(roc_auc_score(is_member, scores))
    out["sklearn_auroc_s"] = time.perf_counter() - t
    print(json.dumps(out))


def _run(n: int, seed: int, src: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, _SRC])}
    cmd = [sys.executable, __file__, "--child", str(n), "--seed", str(seed)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare-src", help="another source tree to time on the same N")
    ap.add_argument("--compare-max", type=int, default=100_000)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.seed)
        return

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before: {load}; {os.cpu_count()} CPUs")
    print(
        "| N | code | inputs s | features s | fit s | peak RSS MB (start / inputs / features / fit) "
        "| AUROC | roc_auc_score | AUROC s | roc_auc_score s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    totals = []
    for n in args.sizes:
        runs = [("this", _SRC)]
        if args.compare_src and n <= args.compare_max:
            runs.append(("compare", args.compare_src))
        for code, src in runs:
            r = _run(n, args.seed, src)
            if code == "this":
                totals.append(r["features_s"] + r["fit_s"])
            print(
                f"| {n:,} | {code} | {r['inputs_s']:.2f} | {r['features_s']:.2f} | "
                f"{r['fit_s']:.2f} | {r['rss_start_mb']:.0f} / {r['inputs_rss_mb']:.0f} / "
                f"{r['features_rss_mb']:.0f} / "
                f"{r['fit_rss_mb']:.0f} | {r['auroc']:.4f} | {r['sklearn_auroc']:.4f} | "
                f"{r['auroc_s']:.3f} | {r['sklearn_auroc_s']:.3f} |",
                flush=True,
            )
    if len(totals) > 1:
        slope = np.polyfit(np.log(args.sizes), np.log(totals), 1)[0]
        print(f"log-log slope of features + fit over N: {slope:.2f}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average after: {load}")


if __name__ == "__main__":
    main()
