"""Training on in-memory tensors, with checkpoints that resume exactly.

Batches are sliced from one uint8 tensor and preprocessed on the fly (no
DataLoader, no per-sample Python). The checkpoint holds model, optimiser and
both RNG states, so a resumed run continues bit-for-bit where it stopped. It is
written after the first and the last epoch and, between them, after the first
epoch that ends :data:`CHECKPOINT_SECONDS` after the previous save.

Speed (measured in BENCHMARKS.md): convolutional models train in channels-last
layout (CPU max-pooling in NCHW is ~10x slower) and the optimiser uses its fused
kernel (one op per step instead of ~10 per parameter tensor). The model is handed
back in the default contiguous layout, so a trained model and one loaded from disk
compute bit-identical outputs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from mistrust.data.images import Preprocess
from mistrust.io import atomic_torch_save
from mistrust.models.layout import memory_format_for

log = logging.getLogger(__name__)

#: ``train.optimizer`` choices
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
#: training seconds between two epoch checkpoints: a crash loses at most about this much,
#: and a small model is not saved 40 times (9 ms each: 0.35 s of a 9 s SalemCNN training)
CHECKPOINT_SECONDS = 10.0
#: what building any torch optimiser (Adam, SGD, LBFGS) imports the first time, lazily:
#: a process forking workers that optimise imports it first, so that they inherit it
OPTIMIZER_IMPORTS: tuple[str, ...] = ("torch._dynamo",)
#: ``data.augment`` choices (none, random flip + 4-pixel-padded crop, or the paper's Dogs
#: rotation, random crop and flip: :func:`rotate_crop_flip`), each with whether it flips
#: images horizontally; the reference attacks query flipped images only where the models
#: trained on flips
AUGMENT_FLIPS: dict[str, bool] = {"none": False, "flip-crop": True, "rotate-crop-flip": True}
AUGMENTS: tuple[str, ...] = tuple(AUGMENT_FLIPS)


class TrainSettings(Protocol):
    """What training reads; :class:`mistrust.config.TrainConfig` is one (the trainer sits
    below the config layer, so it names the fields instead of importing the class)."""

    optimizer: str  # one of OPTIMIZERS
    lr: float
    momentum: float  # SGD only
    epochs: int
    batch_size: int
    weight_decay: float  # an L2 term in the gradient
    label_smoothing: float


@dataclass
class TrainHistory:
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = 0


_FUSED_DEVICES = ("cpu", "cuda")


def make_optimizer(model: nn.Module, cfg: TrainSettings) -> torch.optim.Optimizer:
    # weight decay as an L2 term in the gradient (the paper's "L2 regularisation")
    params = list(model.parameters())
    fused = all(p.device.type in _FUSED_DEVICES and p.is_floating_point() for p in params)
    kw = {"fused": True} if fused else {}
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {cfg.optimizer!r}")
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **kw
    )


def flip_crop(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random horizontal flip and a random crop after zero padding, batched: ``(N, C, H, W)``."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(x.device)
    rows = (dy.view(-1, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx.view(-1, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chan = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return xp[batch, chan, rows, cols]


def rotate_crop_flip(
    x: torch.Tensor, size: int, generator: torch.Generator, degrees: float = 20.0
) -> torch.Tensor:
    """The paper's Stanford Dogs training augmentation on a batch ``(N, C, H, W)``.

    Per image: a rotation by a uniform angle in ``[-degrees, degrees]`` about the
    centre (nearest neighbour, corners filled with 0, as torchvision's
    ``RandomRotation``), a random ``size x size`` crop, a horizontal flip with
    probability 1/2. Returns ``(N, C, size, size)``.
    """
    n, _, h, w = x.shape
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(degrees)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = cos, -sin, sin, cos
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    dy = torch.randint(0, h - size + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, w - size + 1, (n,), generator=generator).to(x.device)
    rows = (dy.view(-1, 1) + torch.arange(size, device=x.device)).view(n, 1, size, 1)
    cols = (dx.view(-1, 1) + torch.arange(size, device=x.device)).view(n, 1, 1, size)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chan = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    x = x[batch, chan, rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)


def train_model(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    preprocess: Preprocess,
    cfg: TrainSettings,
    *,
    seed: int,
    device: torch.device | str = "cpu",
    augment: str = "none",
    checkpoint: Path | None = None,
    fingerprint: str = "",
    progress: bool = False,
    desc: str = "train",
) -> TrainHistory:
    """Train ``model`` in place on uint8 ``images (N, C, H, W)`` and ``labels (N,)``.

    With ``checkpoint`` set, state is saved after the first and the last epoch and at
    least every :data:`CHECKPOINT_SECONDS` between them, and a matching checkpoint (same
    ``fingerprint``) is resumed from.
    """
    if augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {list(AUGMENTS)}, got {augment!r}")
    device = torch.device(device)
    torch.manual_seed(seed)
    fmt = memory_format_for(model)
    model.to(device=device, memory_format=fmt)
    opt = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(seed)
    hist = TrainHistory()
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            hist.loss, hist.accuracy = list(state["loss"]), list(state["accuracy"])
            start = hist.resumed_from = int(state["epoch"])
            log.info("%s: resuming after epoch %d from %s", desc, start, checkpoint)
        else:
            log.warning("%s: ignoring checkpoint %s from another config", desc, checkpoint)
    x_all, y_all = images.to(device), labels.to(device)
    n = len(x_all)
    t0 = saved = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.epochs, initial=start, desc=desc, unit="epoch", leave=False)
    for epoch in range(start, cfg.epochs):
        model.train()
        order = torch.randperm(n, generator=gen).to(device)
        total_loss = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for i in range(0, n, cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            if augment == "rotate-crop-flip":  # on the stored (larger) images, then normalise
                raw = x_all[idx]
                unit = dataclasses.replace(preprocess, size=raw.shape[-1]).to_unit(raw)
                x = preprocess.normalize(rotate_crop_flip(unit, preprocess.size, gen))
            else:
                x = preprocess(x_all[idx])
            if augment == "flip-crop":
                x = flip_crop(x, gen)
            x = x.contiguous(memory_format=fmt)
            y = y_all[idx]
            out = model(x)
            loss = F.cross_entropy(out, y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.detach() * len(idx)
            correct += (out.detach().argmax(1) == y).sum()
        hist.loss.append(float(total_loss) / n)
        hist.accuracy.append(float(correct) / n)
        due = time.perf_counter() - saved >= CHECKPOINT_SECONDS
        if checkpoint is not None and (epoch in (start, cfg.epochs - 1) or due):
            atomic_torch_save(
                checkpoint,
                {
                    "fingerprint": fingerprint,
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "loss": hist.loss,
                    "accuracy": hist.accuracy,
                },
            )
            saved = time.perf_counter()
        log.debug(
            "%s: epoch %d/%d loss %.4f accuracy %.4f",
            desc,
            epoch + 1,
            cfg.epochs,
            hist.loss[-1],
            hist.accuracy[-1],
        )
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{hist.loss[-1]:.3f}", acc=f"{hist.accuracy[-1]:.3f}")
    if bar is not None:
        bar.close()
    hist.seconds = time.perf_counter() - t0
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    return hist
