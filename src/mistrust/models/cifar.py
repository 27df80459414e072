"""CIFAR-style networks: ResNet-18 with a 3x3 stride-1 stem and no max-pool, EfficientNet-B0."""

from __future__ import annotations

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


def efficientnet_b0_cifar(*, channels: int, num_classes: int, size: int) -> Classifier:
    """torchvision's EfficientNet-B0 with a stride-1 stem, as CIFAR ports do for 32x32 inputs."""
    from torchvision.models import efficientnet_b0

    net = efficientnet_b0(weights=None, num_classes=num_classes)
    stem = net.features[0][0]
    net.features[0][0] = nn.Conv2d(channels, stem.out_channels, 3, 1, 1, bias=False)
    body = nn.Sequential(net.features, net.avgpool, nn.Flatten(), net.classifier[0])
    return Classifier(body, net.classifier[1])
