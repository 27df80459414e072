"""The model of this example: a small CNN for 8x8 digits, in plain PyTorch.

``make_net`` is the factory ``mistrust audit`` imports (``factory: digits_net:make_net``)
to rebuild the model from its state dict, or to train a shadow model like it.
"""

from __future__ import annotations

import torch
from torch import nn


class DigitsNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 4x4 -> 2x2
        )
        self.hidden = nn.Linear(32 * 2 * 2, 64)
        self.classifier = nn.Linear(64, num_classes)  # the last linear layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.relu(self.hidden(self.conv(x).flatten(1))))


def make_net(num_classes: int = 10) -> DigitsNet:
    return DigitsNet(num_classes)
