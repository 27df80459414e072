"""Synthetic stand-in images with a dataset's shape, for smoke tests without the data.

Each class is a fixed random low-frequency pattern plus per-image noise, so a
model can learn (and overfit) it like a real dataset, in seconds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mistrust.data.images import ImageSet
from mistrust.data.sources import SourceSpec


def stand_in_counts(
    *,
    train_size: int,
    test_size: int,
    stratified_pool: int | None,
    num_classes: int,
    held_out: int = 0,
) -> tuple[int, int]:
    """Images in the stand-in train and test pools: enough for both roles' splits once the
    ``held_out`` of ``num_classes`` (balanced) classes are set aside."""
    kept = max(num_classes - held_out, 1)

    def enough(n: int) -> int:
        return -(-n * num_classes // kept) + 16  # ceil, then a margin

    return enough(max(2 * train_size, stratified_pool or 0)), enough(2 * test_size)


def stand_in_set(
    spec: SourceSpec,
    *,
    n: int,
    split: str,
    size: int | None = None,
    num_classes: int | None = None,
    seed: int = 0,
) -> ImageSet:
    """``n`` uint8 images ``(n, C, S, S)`` in ``num_classes`` classes (balanced)."""
    size = size or spec.size
    k = num_classes or spec.num_classes or 10
    g = torch.Generator().manual_seed(seed)
    templates = F.interpolate(
        torch.rand(k, spec.channels, 4, 4, generator=g),
        size=(size, size),
        mode="bilinear",
        align_corners=False,
    )
    g.manual_seed(seed + (1 if split == "train" else 2))
    labels = torch.arange(n) % k
    labels = labels[torch.randperm(n, generator=g)]
    noise = torch.rand(n, spec.channels, size, size, generator=g)
    x = (0.6 * templates[labels] + 0.4 * noise).mul(255).round().clamp(0, 255).to(torch.uint8)
    return ImageSet(x, labels.long(), [f"class-{i}" for i in range(k)], f"{spec.name}-stand-in")
