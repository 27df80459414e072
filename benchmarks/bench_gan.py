"""Train the Fashion-MNIST GAN on 4,000 real images; time it and save a sample grid.

python benchmarks/bench_gan.py --epochs 20 --out /tmp/gan_samples.png
python benchmarks/bench_gan.py --compare --n 1000 --epochs 1 --rounds 3

``--compare`` times ``train_gan`` as shipped (channels-last, fused Adam) against the
loop before those changes (NCHW, for-loop Adam; reproduced below), round-robin in
this process, and reports the best of ``--rounds`` each and the 1-min load.
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from mistrust.data.gan import DEFAULT_EPOCHS, Discriminator, Generator, sample_gan, train_gan

ROOT = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic, big-endian dims, then uint8 data."""
    with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as fh:
        raw = fh.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def train_gan_before(images: torch.Tensor, labels: torch.Tensor, epochs: int) -> Generator:
    """``train_gan``'s loop before channels-last and fused Adam (defaults, CPU)."""
    x = images.float().div_(127.5).sub_(1.0)
    c_all = torch.nn.functional.one_hot(labels, int(labels.max()) + 1).float()
    torch.manual_seed(42)
    gen = torch.Generator().manual_seed(42)
    g_net = Generator(z_dim=64, channels=1, size=28, c_dim=c_all.shape[1])
    d_net = Discriminator(channels=1, size=28, c_dim=c_all.shape[1])
    opt_g = torch.optim.Adam(g_net.parameters(), lr=5e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_net.parameters(), lr=5e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    n = len(x)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n - 1, 32):
            idx = order[i : i + 32]
            if len(idx) < 2:
                continue
            real, c = x[idx], c_all[idx]
            fake = g_net(torch.randn(len(idx), 64, generator=gen), c)
            ones = torch.ones(len(idx))
            loss_d = bce(d_net(real, c), 0.9 * ones) + bce(d_net(fake.detach(), c), 0 * ones)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_g = bce(d_net(fake, c), ones)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
    return g_net.eval()


def compare(images: torch.Tensor, labels: torch.Tensor, epochs: int, rounds: int) -> None:
    variants = {
        "before: NCHW, Adam for-loop": lambda: train_gan_before(images, labels, epochs),
        "shipped: channels-last, fused Adam": lambda: train_gan(
            images, labels=labels, epochs=epochs
        ),
    }
    best = dict.fromkeys(variants, float("inf"))
    load0 = os.getloadavg()[0]
    for _ in range(rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    base = best["before: NCHW, Adam for-loop"]
    print(f"train_gan on {len(images)} images, {epochs} epoch(s), best of {rounds} round-robin")
    print("| variant | seconds | speed-up |\n|---|---:|---:|")
    for name, t in best.items():
        print(f"| {name} | {t:.2f} | {base / t:.2f}x |")
    a = train_gan_before(images, labels, epochs).state_dict()
    b = train_gan(images, labels=labels, epochs=epochs).state_dict()
    c = train_gan(images, labels=labels, epochs=epochs).state_dict()
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    same = all(torch.equal(b[k], c[k]) for k in b)
    print(f"generator weights, before vs shipped: max abs difference {diff:.2e}")
    print(f"shipped twice with the same seed: {'bit-identical' if same else 'DIFFERENT'}")
    print(f"1-min load before / after: {load0:.2f} / {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--unconditional", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--out", type=Path, default=Path("/tmp/gan_samples.png"))
    ap.add_argument("--compare", action="store_true", help="shipped loop vs the one before")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    images = torch.from_numpy(read_idx(args.root / "train-images-idx3-ubyte.gz")[: args.n].copy())
    labels = torch.from_numpy(read_idx(args.root / "train-labels-idx1-ubyte.gz")[: args.n].copy())
    images = images.unsqueeze(1)  # (N, 1, 28, 28)
    print(f"threads={torch.get_num_threads()} images={tuple(images.shape)}")
    if args.compare:
        compare(images, labels.long(), args.epochs, args.rounds)
        return

    start = time.perf_counter()
    g = train_gan(
        images,
        labels=None if args.unconditional else labels.long(),
        epochs=args.epochs,
        width=args.width,
        progress=True,
    )
    total = time.perf_counter() - start
    print(f"total {total:.1f} s, {total / max(args.epochs, 1):.2f} s/epoch")

    cols = g.c_dim or 8  # conditional: one column per class
    classes = torch.arange(8 * cols) % cols if g.c_dim else None
    fakes = sample_gan(g, 8 * cols, seed=0, classes=classes)
    fig = Figure(figsize=(cols, 8), dpi=100)
    for i, img in enumerate(fakes):
        ax = fig.add_subplot(8, cols, i + 1)
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=255)
        ax.axis("off")
    fig.tight_layout(pad=0.2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"samples: {args.out}")


if __name__ == "__main__":
    main()
