from __future__ import annotations

import pytest
import torch

from mistrust.models import create_model, model_names


@pytest.mark.parametrize(
    "arch, channels, size",
    [
        ("salem-cnn", 1, 28),
        ("salem-cnn", 3, 32),
        ("mlp", 1, 8),
        ("resnet18-cifar", 3, 32),
        ("efficientnet-b0-cifar", 3, 32),
        ("resnet18", 3, 64),
        ("resnet50", 1, 64),
    ],
)
def test_head_of_features_is_forward(arch: str, channels: int, size: int) -> None:
    torch.manual_seed(0)
    model = create_model(arch, channels=channels, num_classes=7, size=size).eval()
    x = torch.randn(2, channels, size, size)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 7)
        assert torch.allclose(model.head(model.features(x)), out, atol=1e-5)
    assert isinstance(model.head, torch.nn.Linear)


def test_registry_and_errors(tmp_path) -> None:
    assert {
        "salem-cnn",
        "mlp",
        "resnet18-cifar",
        "efficientnet-b0-cifar",
        "resnet18",
        "resnet50",
    } <= set(model_names())
    with pytest.raises(ValueError, match="unknown model"):
        create_model("vgg", channels=1, num_classes=2, size=8)
    from mistrust.models import WeightsError

    with pytest.raises(WeightsError, match="pretrained weights not found"):
        create_model(
            "resnet18",
            channels=3,
            num_classes=2,
            size=32,
            pretrained=True,
            weights_path=str(tmp_path / "none.pt"),
        )
