"""Every model is a feature body plus a linear head: ``model(x) == head(features(x))``.

The split lets the pipeline cache penultimate features once, so last-layer
Laplace never runs the body again.
"""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self, body: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.body = body
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(N, C, H, W)`` -> ``(N, D)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
