"""CIFAR-style networks: ResNet-18 with a 3x3 stride-1 stem and no max-pool, EfficientNet-B0."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mistrust.models.base import Classifier


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):  # type: ignore[no-untyped-def]
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def resnet18_cifar(*, channels: int, num_classes: int, size: int, width: int = 64) -> Classifier:
    layers: list[nn.Module] = [
        nn.Conv2d(channels, width, 3, 1, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    cin = width
    for i, mult in enumerate((1, 2, 4, 8)):
        cout = width * mult
        stride = 1 if i == 0 else 2
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return Classifier(nn.Sequential(*layers), nn.Linear(cin, num_classes))


class _Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x.sigmoid()


class _SqueezeExcite(nn.Module):
    """Channel attention: pool, 1x1 conv down, swish, 1x1 conv up, sigmoid gate."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(channels, reduced, 1)
        self.up = nn.Conv2d(reduced, channels, 1)
        self.act = _Swish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.up(self.act(self.down(F.adaptive_avg_pool2d(x, 1)))).sigmoid()
        return x * gate


class _MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, squeeze-excite, 1x1 projection.

    The squeeze-excite width is a quarter of the block's *input* channels (not of
    the expanded ones), and the residual is added without drop-connect, both as
    in the paper's network.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), _Swish()]
        layers += [
            nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
            _Swish(),
            _SqueezeExcite(mid, int(cin * 0.25)),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


# (expansion, output channels, blocks, kernel, first stride) per stage of EfficientNet-B0
_B0_STAGES = (
    (1, 16, 1, 3, 1),
    (6, 24, 2, 3, 2),
    (6, 40, 2, 5, 2),
    (6, 80, 3, 3, 2),
    (6, 112, 3, 5, 1),
    (6, 192, 4, 5, 2),
    (6, 320, 1, 3, 1),
)


def efficientnet_b0_cifar(*, channels: int, num_classes: int, size: int) -> Classifier:
    """EfficientNet-B0 for 32x32 inputs, the network of the paper's CIFAR-10 study.

    The paper used the CIFAR port from github.com/kuangliu/pytorch-cifar (MIT
    licence, copyright (c) 2017 liukuang); this follows its architecture: a
    3x3 stride-1 stem of 32 channels, the seven B0 stages with swish and
    squeeze-excitation, no 1x1 conv to 1280 (the head reads the 320 channels
    of the last stage), dropout 0.2 before the head. Its drop-connect rate
    comes out as 0 for every block (the block counter never advances), so
    there is none here. 3,598,598 parameters for 10 classes: the port's own
    count, 3,599,686, includes an expansion conv and norm (1,088 parameters)
    that its first block builds but never uses.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(channels, 32, 3, 1, 1, bias=False),
        nn.BatchNorm2d(32),
        _Swish(),
    ]
    cin = 32
    for expand, cout, blocks, kernel, stride in _B0_STAGES:
        for i in range(blocks):
            layers.append(_MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2)]
    return Classifier(nn.Sequential(*layers), nn.Linear(cin, num_classes))
