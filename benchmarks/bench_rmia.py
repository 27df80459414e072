"""Benchmark: RMIA scores, streaming (sort + binary search) vs dense (N x Z comparisons).

Usage::

    python benchmarks/bench_rmia.py                    # N = 50,000 targets, Z = 25,000 z
    python benchmarks/bench_rmia.py --n 5000 --z 2000  # smaller
    python benchmarks/bench_rmia.py --full             # also the one-shot dense matrix

"Dense" is the paper's definition evaluated literally: every ``ratio_x /
ratio_z`` compared with gamma. Done in one shot at the default sizes it needs a
50,000 x 25,000 float64 quotient (10 GB) plus a boolean matrix (1.25 GB), so
the default dense run computes the same matrix in row chunks (``--chunk``
rows at a time: ``chunk * Z`` float64 at once); ``--full`` adds the one-shot
float32 variant (5 GB + 1.25 GB; only on a machine with the memory).
Peak memory is what ``tracemalloc`` saw NumPy allocate during the call, on
top of the inputs. Ratios are log-normal with ~1 % ties.
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from mistrust.attacks.reference.rmia import rmia_scores, rmia_scores_dense


def _measure(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def _full_float32(x: np.ndarray, z: np.ndarray, gamma: float) -> np.ndarray:
    q = x.astype(np.float32)[:, None] / z.astype(np.float32)[None, :]
    return (q > gamma).mean(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="target samples x")
    ap.add_argument("--z", type=int, default=25_000, help="population samples z")
    ap.add_argument("--gamma", type=float, default=1.0)
    ap.add_argument("--chunk", type=int, default=1024, help="rows per dense chunk")
    ap.add_argument("--full", action="store_true", help="also the one-shot float32 dense matrix")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    x = rng.lognormal(size=args.n)
    z = rng.lognormal(size=args.z)
    x[: args.n // 100] = z[rng.integers(0, args.z, args.n // 100)]  # ties with z
    rows = []
    stream, t, mem = _measure(lambda: rmia_scores(x, z, gamma=args.gamma))
    rows.append(("streaming (sort + bisection)", t, mem, "exact"))
    dense, t, mem = _measure(lambda: rmia_scores_dense(x, z, gamma=args.gamma, chunk=args.chunk))
    same = "equal" if np.array_equal(dense, stream) else "DIFFERS"
    rows.append((f"dense, {args.chunk}-row chunks (float64)", t, mem, same))
    if args.full:
        full, t, mem = _measure(lambda: _full_float32(x, z, args.gamma))
        diff = int(np.count_nonzero(full != stream))
        rows.append(
            (
                "dense, one shot (float32)",
                t,
                mem,
                "equal" if diff == 0 else f"{diff} rows differ (float32 rounding)",
            )
        )

    print(
        f"RMIA scores, N = {args.n:,} targets, Z = {args.z:,} population samples, "
        f"gamma = {args.gamma:g}; {platform.processor() or platform.machine()}, "
        f"numpy {np.__version__}"
    )
    print("| method | seconds | peak MiB | vs streaming |")
    print("|---|---:|---:|---|")
    for name, seconds, mib, note in rows:
        print(f"| {name} | {seconds:.3f} | {mib:,.1f} | {note} |")


if __name__ == "__main__":
    main()
