"""Benchmark: the whole default preset end to end, fresh, with its stage breakdown.

Usage::

    python benchmarks/bench_default.py                    # mistrust run --preset default
    python benchmarks/bench_default.py --quick            # the same with train.epochs=5, gan_epochs=2
    python benchmarks/bench_default.py --malloc-ab        # twice: glibc malloc as is, then tuned
    python benchmarks/bench_default.py --profile prof.out # also a cProfile dump of the run
    python benchmarks/bench_default.py --set train.epochs=20   # any override

Runs the CLI in a fresh temporary directory (no reused models or outputs) with
a fresh ``MISTRUST_CACHE`` (so the GAN is trained too; ``--reuse-cache`` keeps
yours), then rebuilds the report alone with ``mistrust report`` to time that
stage (``results.json`` is written before the report exists). Prints the wall
time, the stage timings of ``results.json`` and every model's training seconds.

``--malloc-ab`` runs the preset a second time with glibc's allocator told to
keep freed memory (``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``, see
BENCHMARKS.md), prints both side by side and checks that ``results.csv`` is
byte-identical between the two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 300.0  # the budget: the whole default preset in 5 minutes on 2 CPU cores
# glibc: serve allocations up to 32 MiB from the heap and never trim it below 1 GiB, so
# PyTorch's large per-step tensors reuse memory instead of page-faulting fresh mmaps
MALLOC_TUNED = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**30)}


def _cli(*args: str, env: dict[str, str], profile: Path | None = None) -> float:
    prof = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [sys.executable, *prof, "-m", "mistrust.cli", *args]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def run_default(
    out: Path,
    overrides: list[str],
    *,
    cache: Path | None,
    extra_env: dict[str, str] | None = None,
    profile: Path | None = None,
) -> dict:
    """``cache``: a fresh ``MISTRUST_CACHE`` (so the GAN is trained), or None to use the user's."""
    env = dict(os.environ, **(extra_env or {}))
    if cache:
        env["MISTRUST_CACHE"] = str(cache)
    sets = [a for o in overrides for a in ("--set", o)]
    load = os.getloadavg()[0]
    wall = _cli("run", "--preset", "default", "--out", str(out), "--quiet", *sets, env=env,
                profile=profile)  # fmt: skip
    report = _cli("report", str(out), env=env)
    doc = json.loads((out / "results.json").read_text())
    timings = dict(doc["timings"])
    timings["report + start-up (not in results.json)"] = wall - sum(timings.values())
    return {
        "wall": wall,
        "report": report,
        "load": load,
        "timings": timings,
        "train": doc.get("train_seconds", {}),
        "csv": (out / "results.csv").read_bytes(),
    }


def print_breakdown(runs: dict[str, dict]) -> None:
    names = list(runs)
    first = runs[names[0]]
    print("| stage | " + " | ".join(f"{n} s" for n in names) + " | share (first) |")
    print("|---|" + "---:|" * (len(names) + 1))
    for stage in sorted(first["timings"], key=lambda k: -first["timings"][k]):
        cells = " | ".join(f"{r['timings'].get(stage, 0.0):.1f}" for r in runs.values())
        print(f"| {stage} | {cells} | {100 * first['timings'][stage] / first['wall']:.0f} % |")
    walls = " | ".join(f"**{r['wall']:.1f}**" for r in runs.values())
    verdict = "within" if first["wall"] <= TARGET_S else "OVER"
    print(f"| **total (wall)** | {walls} | {verdict} the {TARGET_S:.0f} s budget |")
    print(
        "| 1-min load at start | " + " | ".join(f"{r['load']:.2f}" for r in runs.values()) + " | |"
    )
    for name, r in runs.items():
        print(f"\n{name}: `mistrust report` alone (incl. start-up) {r['report']:.1f} s", end="")
        if r["train"]:
            models = ", ".join(f"{k} {v:.1f}" for k, v in r["train"].items())
            print(f"; training s per model: {models} (sum {sum(r['train'].values()):.1f})")
    if len(runs) > 1:
        same = all(r["csv"] == first["csv"] for r in runs.values())
        print(f"\nresults.csv byte-identical across these runs: {'yes' if same else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="train.epochs=5, eval.gan_epochs=2")
    ap.add_argument("--set", action="append", default=[], help="extra --set override")
    ap.add_argument("--keep", type=Path, help="run into this directory (must not exist)")
    ap.add_argument("--profile", type=Path, help="write a cProfile dump of the (first) run here")
    ap.add_argument("--malloc-ab", action="store_true", help="also run with tuned glibc malloc")
    ap.add_argument("--reuse-cache", action="store_true", help="keep MISTRUST_CACHE (reuse GAN)")
    args = ap.parse_args()
    overrides = (["train.epochs=5", "eval.gan_epochs=2"] if args.quick else []) + args.set
    configs = {"as is": {}, **({"malloc tuned": MALLOC_TUNED} if args.malloc_ab else {})}
    runs = {}
    with tempfile.TemporaryDirectory(prefix="mistrust-default-") as tmp:
        for i, (name, env) in enumerate(configs.items()):
            out = args.keep if args.keep and i == 0 else Path(tmp) / f"run{i}"
            if out.exists():
                raise SystemExit(f"{out} exists; the benchmark needs a fresh directory")
            cache = None if args.reuse_cache else Path(tmp) / f"cache{i}"
            prof = args.profile if i == 0 else None
            runs[name] = run_default(out, overrides, cache=cache, extra_env=env, profile=prof)
    label = " ".join(f"--set {o}" for o in overrides)
    print(f"mistrust run --preset default {label}".rstrip() + f" (fresh; {os.cpu_count()} CPUs)\n")
    print_breakdown(runs)


if __name__ == "__main__":
    main()
