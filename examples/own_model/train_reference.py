"""Train reference models like the target, for LiRA and RMIA, and hand over their outputs.

Usage (after ``train.py --out out``)::

    python train_reference.py --out out --models 4     # a few seconds per model on a CPU

The population is the target's members, then its non-members (``members.npz``,
``nonmembers.npz``, in that order), then digits that no part of ``train.py`` used.
Reference models come in pairs: model ``2j`` trains on a random half of the audited
digits, model ``2j+1`` on the other half, each with a random half of the further digits,
so every audited digit is IN for half of the models. Writes ``out/reference/keep.npz``
(``keep``, ``labels``, ``z``, ``source_scaled``) and ``out/reference/logits.npz``
(``population``, ``scaled``, ``target_z``): the layout of docs/REFERENCE_AUDIT.md, which
``reference.yaml`` audits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from digits_net import make_net
from sklearn.datasets import load_digits
from train import transform


def _train(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> torch.nn.Module:
    """The target's recipe (train.py) on other data."""
    torch.manual_seed(seed)
    model = make_net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(32):
            opt.zero_grad()
            F.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out"))
    ap.add_argument("--models", type=int, default=4, help="reference models (even)")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(1)  # tiny models: threads cost more than they save
    out: Path = args.out
    (out / "reference").mkdir(parents=True, exist_ok=True)

    audited = [np.load(out / f"{name}.npz") for name in ("members", "nonmembers")]
    n = len(audited[0]["labels"])
    digits = load_digits()  # the digits after train.py's four parts
    order = np.random.default_rng(0).permutation(len(digits.images))[4 * n :]
    extra = np.round(digits.images[order] * (255 / 16)).astype(np.uint8)
    images = np.concatenate([audited[0]["images"], audited[1]["images"], extra])
    labels = np.concatenate([audited[0]["labels"], audited[1]["labels"], digits.target[order]])
    x, y = transform(images), torch.from_numpy(labels.astype(np.int64))
    scaled = transform(audited[1]["images"]) * 20  # train.py's OOD set: copies of non-members

    rng = np.random.default_rng(1)
    a = 2 * n
    keep = np.zeros((args.models, len(images)), bool)
    for m in range(0, args.models, 2):
        half = rng.permutation(a) < a // 2
        keep[m, :a], keep[m + 1, :a] = half, ~half
    keep[:, a:] = rng.random((args.models, len(extra))) < 0.5
    z = np.arange(a, len(images))  # RMIA's population samples: the further digits

    population, on_scaled = [], []
    for m in range(args.models):
        model = _train(x[keep[m]], y[keep[m]], args.epochs, seed=m + 1)
        with torch.no_grad():
            population.append(model(x).numpy())
            on_scaled.append(model(scaled).numpy())
        print(f"reference model {m}: {keep[m].sum()} digits")
    target = make_net()
    target.load_state_dict(torch.load(out / "target_state.pt"))
    with torch.no_grad():
        target_z = target.eval()(x[z]).numpy()
    np.savez(
        out / "reference" / "keep.npz",
        keep=keep,
        labels=labels,
        z=z,
        source_scaled=np.arange(n),  # scaled row j is non-member j, scaled
    )
    np.savez(
        out / "reference" / "logits.npz",
        population=np.stack(population),
        scaled=np.stack(on_scaled),
        target_z=target_z,
    )
    print(f"wrote {out}/reference/keep.npz and logits.npz")


if __name__ == "__main__":
    main()
