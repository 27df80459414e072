"""Model registry: ``create_model("salem-cnn", channels=1, num_classes=10, size=28)``."""

from __future__ import annotations

from collections.abc import Callable

from mistrust.errors import ConfigError
from mistrust.models.base import Classifier
from mistrust.models.cifar import efficientnet_b0_cifar, resnet18_cifar
from mistrust.models.imagenet import WeightsError, resnet18, resnet50
from mistrust.models.small import mlp, salem_cnn

_MODELS: dict[str, Callable[..., Classifier]] = {}
_PRETRAINABLE = {"resnet18", "resnet50"}
_WIDTHS = {"salem-cnn", "mlp", "resnet18-cifar"}
# built and run in milliseconds on a CPU
_SMALL = {"salem-cnn", "mlp"}


def register_model(name: str, factory: Callable[..., Classifier]) -> None:
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = factory


def model_names() -> list[str]:
    return sorted(_MODELS)


def pretrainable(arch: str) -> bool:
    """Whether ``arch`` can start from ImageNet weights (``model.pretrained``)."""
    return arch in _PRETRAINABLE


def is_small(arch: str) -> bool:
    """Whether ``arch`` builds and runs in milliseconds on a CPU (a plan checks it there
    rather than on the meta device, whose first use imports ``torch._dynamo``: 1.5 s)."""
    return arch in _SMALL


def has_width(arch: str) -> bool:
    """Whether ``arch`` takes a width (``model.width``)."""
    return arch in _WIDTHS


def create_model(
    arch: str,
    *,
    channels: int,
    num_classes: int,
    size: int,
    width: int | None = None,
    pretrained: bool = False,
    weights_path: str | None = None,
) -> Classifier:
    """``width=None`` keeps the architecture's own width."""
    if arch not in _MODELS:
        raise ValueError(f"unknown model {arch!r}; choose from {', '.join(model_names())}")
    kwargs: dict = {"channels": channels, "num_classes": num_classes, "size": size}
    if width is not None:
        if arch not in _WIDTHS:
            raise ConfigError(f"model.width: {arch} has a fixed width; leave model.width unset")
        kwargs["width"] = width
    if arch in _PRETRAINABLE:
        kwargs.update(pretrained=pretrained, weights_path=weights_path)
    elif pretrained:
        raise ConfigError(
            f"model.pretrained: {arch} has no pretrained weights; set model.pretrained: false"
        )
    return _MODELS[arch](**kwargs)


for _name, _factory in {
    "salem-cnn": salem_cnn,
    "mlp": mlp,
    "resnet18-cifar": resnet18_cifar,
    "efficientnet-b0-cifar": efficientnet_b0_cifar,
    "resnet18": resnet18,
    "resnet50": resnet50,
}.items():
    register_model(_name, _factory)

__all__ = [
    "Classifier",
    "WeightsError",
    "create_model",
    "has_width",
    "is_small",
    "model_names",
    "pretrainable",
    "register_model",
]
