"""Perturbations of evaluation inputs and synthetic noise images.

These build the paper's "permuted", "scaled" and noise non-member sets. All
functions are batched tensor operations; randomness comes from an explicit
``torch.Generator`` so a set is reproducible from its seed.

``permute_pixels`` and ``scale`` act on the *normalised* float tensor (the
caller applies the target's ``Preprocess`` first); ``noise_images`` returns raw
``uint8`` pixels that go through ``Preprocess`` like any other image set.
"""

from __future__ import annotations

from typing import Literal

import torch

NoiseKind = Literal["uniform", "gaussian"]
NOISE_KINDS: tuple[str, ...] = ("uniform", "gaussian")

#: Mean and standard deviation of the ``"gaussian"`` noise, in pixel units.
GAUSSIAN_MEAN = 127.5
GAUSSIAN_STD = 64.0


def permute_pixels(x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Shuffle the spatial positions of each image.

    x: ``(N, C, H, W)`` float. Each image gets its own random permutation of its
    ``H * W`` positions, shared by all of its channels, so a pixel's colour
    vector moves as a whole. Returns a new ``(N, C, H, W)`` tensor.
    """
    if x.ndim != 4:
        raise ValueError(f"expected (N, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    keys = torch.rand((n, h * w), generator=generator, device=generator.device)
    perm = keys.argsort(dim=1).to(x.device)  # (N, H*W), a permutation per image
    flat = x.reshape(n, c, h * w)
    out = flat.gather(2, perm.unsqueeze(1).expand(n, c, h * w))
    return out.reshape(n, c, h, w)


def scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """``factor * x``; the paper multiplies the normalised tensor by 255."""
    return x * factor


def noise_images(
    n: int,
    *,
    channels: int,
    size: int,
    kind: NoiseKind = "uniform",
    generator: torch.Generator,
) -> torch.Tensor:
    """Random images: ``(n, channels, size, size)`` uint8.

    kind: ``"uniform"`` draws every pixel uniformly from 0..255; ``"gaussian"``
    draws N(127.5, 64²) per pixel, rounds and clips to 0..255.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose from {', '.join(NOISE_KINDS)}")
    if n < 0 or channels < 1 or size < 1:
        raise ValueError(f"invalid noise shape n={n}, channels={channels}, size={size}")
    shape = (n, channels, size, size)
    if kind == "uniform":
        return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)
    z = torch.randn(shape, generator=generator)
    return (z * GAUSSIAN_STD + GAUSSIAN_MEAN).round_().clamp_(0, 255).to(torch.uint8)
