"""SalemCNN (ML-Leaks) and an MLP, for any channel count and input size."""

from __future__ import annotations

import torch
from torch import nn

from mistrust.models.base import Classifier


def salem_cnn(*, channels: int, num_classes: int, size: int, width: int = 128) -> Classifier:
    """The paper's SalemCNN: conv5x5-32, pool, conv5x5-32, pool, fc-``width``, fc-classes.

    Convolutions pad by 2 (size-preserving), ReLU after each layer but the last,
    2x2 max-pooling: at 32x32 the flattened features are 32 x 8 x 8 = 2048
    (291,626 parameters for 10 classes), at 28x28 32 x 7 x 7 = 1568.

    Each convolution is pooled before its ReLU: max-pooling and ReLU commute
    (``relu(max(x)) == max(relu(x))``, gradients included), so this is the paper's
    conv-ReLU-pool network, with the ReLU run on a quarter of the values.
    """
    conv = nn.Sequential(
        nn.Conv2d(channels, 32, 5, padding=2),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(32, 32, 5, padding=2),
        nn.MaxPool2d(2),
        nn.ReLU(),
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
