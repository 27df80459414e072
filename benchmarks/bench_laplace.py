"""Time last-layer Laplace: fit (KFAC + 21-point prior grid) and prediction.

    python benchmarks/bench_laplace.py                      # D=128, C=10 (SalemCNN-sized)
    python benchmarks/bench_laplace.py --dim 2048 --classes 120   # ResNet-50 / Stanford Dogs
    python benchmarks/bench_laplace.py --threads 1 --compare      # also time laplace-torch's own predictive

Prints wall-clock seconds. Features are synthetic Gaussian clusters and the head
is trained for a few Adam steps; only the timings matter here.
"""

from __future__ import annotations

import argparse
import time

import laplace  # noqa: F401  (imported up front so that import time is not timed)
import torch
import torch.nn.functional as F

from mistrust.calibration import fit_last_layer_laplace


def _data(n: int, centers: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, len(centers), (n,), generator=g)
    return centers[y] + torch.randn(n, centers.shape[1], generator=g), y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-val", type=int, default=1000)
    ap.add_argument("--n-ood", type=int, default=1000)
    ap.add_argument("--n-predict", type=int, default=10_000)
    ap.add_argument("--grid-size", type=int, default=21)
    ap.add_argument("--n-samples", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--compare", action="store_true", help="also time la(x, 'glm', 'mc')")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    centers = torch.randn(args.classes, args.dim, generator=g) * 0.5
    xt, yt = _data(args.n_train, centers, g)
    xv, yv = _data(args.n_val, centers, g)
    xo = torch.rand(args.n_ood, args.dim, generator=g) * 3
    xp = torch.randn(args.n_predict, args.dim, generator=g)
    head = torch.nn.Linear(args.dim, args.classes)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(head(xt), yt).backward()
        opt.step()

    print(f"D={args.dim} C={args.classes} threads={torch.get_num_threads()}")
    t = time.perf_counter()
    m = fit_last_layer_laplace(
        head,
        xt,
        yt,
        val_feats=xv,
        val_labels=yv,
        ood_feats=xo,
        grid_size=args.grid_size,
        n_samples=args.n_samples,
    )
    print(
        f"fit (KFAC + {args.grid_size}-point grid, mc): {time.perf_counter() - t:.2f} s"
        f"  -> prior variance {m.prior_variance_:.3g}"
    )
    t = time.perf_counter()
    fit_last_layer_laplace(head, xt, yt, prior="marglik")
    print(f"fit (KFAC + marglik): {time.perf_counter() - t:.2f} s")
    for pred in ("mc", "probit"):
        t = time.perf_counter()
        m.predict_logprobs(xp, pred=pred)
        print(f"predict {args.n_predict} ({pred}): {time.perf_counter() - t:.2f} s")
    if args.compare:
        # laplace-torch materialises Jacobians (n, C, C * (D + 1)) in float64: cap at ~2 GB
        per_row = 8 * args.classes**2 * (args.dim + 1)
        n = max(1, min(1024, args.n_predict, 2**31 // per_row))
        t = time.perf_counter()
        m.laplace_(xp[:n].double(), pred_type="glm", link_approx="mc", n_samples=args.n_samples)
        print(f"laplace-torch la(x, 'glm', 'mc') on {n}: {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
