"""Train a digits classifier with a plain PyTorch loop that knows nothing of mistrust.

Usage::

    python train.py --out out      # about 10 s on a CPU

Writes into ``out/``: the model as a ``torch.export`` program (``target.pt2``) and as a
state dict (``target_state.pt``); the images it trained on and held out, as ``.npz``
arrays (``members.npz``, ``nonmembers.npz``, and ``shadow_members.npz`` /
``shadow_nonmembers.npz``, more digits of the same distribution, disjoint from the
first); and its logits on them (``logits/*.npz``), as a model from any framework
would hand over. ``audit.yaml`` and ``logits.yaml`` audit these files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from digits_net import make_net
from sklearn.datasets import load_digits

MEAN, STD = 0.5, 0.5  # the model sees (pixels / 255 - 0.5) / 0.5


def transform(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, 8, 8) -> float (N, 1, 8, 8), normalised as in training."""
    return (torch.from_numpy(images).float().div(255).unsqueeze(1) - MEAN) / STD


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--n", type=int, default=300, help="images per part (members, ...)")
    args = ap.parse_args()
    out: Path = args.out
    (out / "logits").mkdir(parents=True, exist_ok=True)

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(images))
    parts = {}
    for i, name in enumerate(("members", "nonmembers", "shadow_members", "shadow_nonmembers")):
        rows = order[i * args.n : (i + 1) * args.n]
        parts[name] = (images[rows], labels[rows])
        np.savez(out / f"{name}.npz", images=images[rows], labels=labels[rows])

    torch.manual_seed(0)
    model = make_net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = transform(parts["members"][0]), torch.from_numpy(parts["members"][1])
    for _ in range(args.epochs):  # long enough to over-fit its training digits a little
        for batch in torch.randperm(len(x)).split(32):
            opt.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
    model.eval()

    torch.save(model.state_dict(), out / "target_state.pt")
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (x[:4],), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, out / "target.pt2")

    with torch.no_grad():
        for name, (imgs, labs) in parts.items():
            logits = model(transform(imgs)).numpy()
            np.savez(out / "logits" / f"{name}.npz", logits=logits, labels=labs)
            acc = (logits.argmax(1) == labs).mean()
            print(f"{name:<18} accuracy {acc:.3f}")
        # an out-of-distribution set: the non-members' pixels scaled up 20x
        ood = model(transform(parts["nonmembers"][0]) * 20).numpy()
        np.savez(out / "logits" / "scaled.npz", logits=ood)  # no labels: no class applies
    print(f"wrote {out}/target.pt2, {out}/target_state.pt and the data")


if __name__ == "__main__":
    main()
