"""In-memory image sets and the evaluation transform.

An ``ImageSet`` keeps raw pixels ``(N, C, H, W)``: ``uint8`` (every dataset, folder
and generated set) or ``float32`` in [0, 1] (a user's float arrays, kept as given so
that the model sees them unrounded). A model sees them only through ``Preprocess``,
which resizes, matches channels and normalises with the *target* dataset's
statistics, all as batched tensor operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

#: the pixel types an ``ImageSet`` holds: 8-bit pixels, or floats in [0, 1]
PIXEL_DTYPES = (torch.uint8, torch.float32)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``images`` as 8-bit pixels: uint8 as they are, floats in [0, 1] rounded. Only for
    what needs 8-bit pixels (the GAN's training images), never for a model's input."""
    if images.dtype == torch.uint8:
        return images
    return images.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


@dataclass
class ImageSet:
    """images: ``(N, C, H, W)`` uint8, or float32 in [0, 1]; labels: ``(N,)`` int64 (-1
    when unknown)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype not in PIXEL_DTYPES or self.images.ndim != 4:
            raise ValueError(
                f"{self.name or 'image set'}: images must be uint8 or float32 (N, C, H, W), "
                f"got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if len(self.labels) != len(self.images):
            raise ValueError(
                f"{self.name or 'image set'}: {len(self.images)} images but {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: torch.Tensor | list[int]) -> ImageSet:
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.images[index], self.labels[index], self.classes, self.name)


@dataclass(frozen=True)
class Preprocess:
    """The target's evaluation transform: pixels ``(N, C, H, W)`` (uint8, or float in
    [0, 1]) -> float ``(N, c, s, s)``."""

    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Resize and match channels; pixels in [0, 1], not normalised. Float pixels are
        already in [0, 1]: taken as they are (a copy), never rounded to 8 bits."""
        x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float().clone()
        if x.shape[1] != self.channels:
            if x.shape[1] == 1:
                x = x.expand(-1, self.channels, -1, -1)
            elif self.channels == 1:
                # ITU-R 601 luma, as PIL's convert("L")
                w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
                w = w.view(1, 3, 1, 1)
                x = (x[:, :3] * w).sum(1, keepdim=True)
            else:
                raise ValueError(f"cannot map {x.shape[1]} channels to {self.channels}")
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
            )
        return x.contiguous()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.to_unit(images))
