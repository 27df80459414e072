"""SalemCNN (ML-Leaks) and an MLP, for any channel count and input size."""

from __future__ import annotations

import torch
from torch import nn

from mistrust.models.base import Classifier


def salem_cnn(*, channels: int, num_classes: int, size: int, width: int = 128) -> Classifier:
    """conv5x5-32, pool, conv5x5-32, pool, fc-``width``, fc-classes (ReLU between)."""
    conv = nn.Sequential(
        nn.Conv2d(channels, 32, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    with torch.no_grad():
        flat = conv(torch.zeros(1, channels, size, size)).shape[1]
    body = nn.Sequential(conv, nn.Linear(flat, width), nn.ReLU())
    return Classifier(body, nn.Linear(width, num_classes))


def mlp(*, channels: int, num_classes: int, size: int, width: int = 128) -> Classifier:
    body = nn.Sequential(
        nn.Flatten(),
        nn.Linear(channels * size * size, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
    )
    return Classifier(body, nn.Linear(width, num_classes))
