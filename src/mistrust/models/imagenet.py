"""torchvision ResNets; ImageNet weights are used only when present locally."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from mistrust.errors import WeightsError
from mistrust.models.base import Classifier

log = logging.getLogger(__name__)


# torchvision <= 0.12 saved the same IMAGENET1K_V1 weights under these names; a hub cache
# filled by an older torchvision (the paper used 0.9) is used as it is
_LEGACY_FILES = {"resnet18": "resnet18-5c106cde.pth", "resnet50": "resnet50-19c8e357.pth"}


def _local_weights(weights: object, weights_path: str | None, legacy: str | None) -> dict:
    if weights_path:
        path = Path(weights_path)
    else:
        url = weights.url  # type: ignore[attr-defined]
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        path = cache / url.rsplit("/", 1)[-1]
        if not path.is_file() and legacy and (cache / legacy).is_file():
            path = cache / legacy
    if not path.is_file():
        raise WeightsError(
            f"pretrained weights not found at {path}. Download them where there is network "
            "(torchvision caches them there), pass model.weights_path, or set "
            "model.pretrained: false"
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def _resnet(factory_name: str, weights_name: str):  # type: ignore[no-untyped-def]
    def build(
        *,
        channels: int,
        num_classes: int,
        size: int,
        pretrained: bool = False,
        weights_path: str | None = None,
    ) -> Classifier:
        import torchvision.models as tvm

        net = getattr(tvm, factory_name)(weights=None)
        if pretrained:
            # IMAGENET1K_V1, not DEFAULT (= V2 for ResNet-50): the paper's torchvision 0.9
            # weights, 76.1 % top-1 rather than V2's 80.9 % from a longer recipe
            weights = getattr(tvm, weights_name).IMAGENET1K_V1
            net.load_state_dict(
                _local_weights(weights, weights_path, _LEGACY_FILES.get(factory_name))
            )
            log.info("loaded pretrained %s weights", factory_name)
        if channels != 3:
            net.conv1 = nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
        head = nn.Linear(net.fc.in_features, num_classes)
        body = nn.Sequential(*list(net.children())[:-1], nn.Flatten())
        return Classifier(body, head)

    return build


resnet18 = _resnet("resnet18", "ResNet18_Weights")
resnet50 = _resnet("resnet50", "ResNet50_Weights")
