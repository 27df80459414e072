"""Train the Fashion-MNIST GAN on 4,000 real images; time it and save a sample grid.

python benchmarks/bench_gan.py --epochs 20 --out /tmp/gan_samples.png
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from mistrust.data.gan import DEFAULT_EPOCHS, sample_gan, train_gan

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--unconditional", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--root", type=Path, default=ROOT)
    ap.add_argument("--out", type=Path, default=Path("/tmp/gan_samples.png"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    images = torch.from_numpy(read_idx(args.root / "train-images-idx3-ubyte.gz")[: args.n].copy())
    labels = torch.from_numpy(read_idx(args.root / "train-labels-idx1-ubyte.gz")[: args.n].copy())
    images = images.unsqueeze(1)  # (N, 1, 28, 28)
    print(f"threads={torch.get_num_threads()} images={tuple(images.shape)}")

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
