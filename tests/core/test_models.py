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


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "channels, size, flat",
    [(3, 32, 2048), (1, 28, 1568)],  # 32 x 8 x 8 at 32x32; 32 x 7 x 7 at 28x28
)
def test_salem_cnn_is_the_papers_network(channels: int, size: int, flat: int) -> None:
    model = create_model("salem-cnn", channels=channels, num_classes=10, size=size)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.padding) for c in convs] == [((5, 5), (2, 2))] * 2
    fc = [m for m in model.body.modules() if isinstance(m, torch.nn.Linear)]
    assert [(f.in_features, f.out_features) for f in fc] == [(flat, 128)]
    # by hand: conv 25*c*32+32, conv 25*32*32+32, fc flat*128+128, head 128*10+10
    expected = 25 * channels * 32 + 32 + 25 * 32 * 32 + 32 + flat * 128 + 128 + 1290
    assert _n_params(model) == expected
    if size == 32:
        assert expected == 291_626  # the paper's SalemCNN_Relu(num_classes=10), counted once


def _mbconv_params(cin: int, cout: int, k: int, expand: int) -> int:
    """Weights of one B0 block by hand: expansion, depthwise, squeeze-excite, projection."""
    mid, se = cin * expand, int(cin * 0.25)
    expansion = (cin * mid + 2 * mid) if expand != 1 else 0  # 1x1 conv (no bias) + BN
    depthwise = mid * k * k + 2 * mid
    squeeze = (mid * se + se) + (se * mid + mid)
    project = mid * cout + 2 * cout
    return expansion + depthwise + squeeze + project


def test_efficientnet_b0_cifar_is_the_papers_network() -> None:
    model = create_model("efficientnet-b0-cifar", channels=3, num_classes=10, size=32)
    stages = [(1, 16, 1, 3), (6, 24, 2, 3), (6, 40, 2, 5), (6, 80, 3, 3)]
    stages += [(6, 112, 3, 5), (6, 192, 4, 5), (6, 320, 1, 3)]
    total, cin = 3 * 32 * 9 + 2 * 32, 32  # stem conv + BN
    for expand, cout, blocks, k in stages:
        for _ in range(blocks):
            total += _mbconv_params(cin, cout, k, expand)
            cin = cout
    total += 320 * 10 + 10
    assert _n_params(model) == total
    # The paper's EfficientNetB0(num_classes=10) reports 3,599,686 parameters
    # (sum(p.numel()) of its class), 1,088 of them in the first block's expansion
    # conv and norm that it builds but never calls (expansion 1): 32 * 32 + 2 * 32.
    assert total == 3_599_686 - (32 * 32 + 2 * 32)
    assert (model.head.in_features, model.head.out_features) == (320, 10)
    dropout = [m for m in model.body.modules() if isinstance(m, torch.nn.Dropout)]
    assert [d.p for d in dropout] == [0.2] and isinstance(model.body[-1], torch.nn.Dropout)
    assert not any(
        isinstance(m, torch.nn.Conv2d) and m.out_channels == 1280 for m in model.modules()
    )
    model.eval()
    with torch.no_grad():
        assert model.features(torch.randn(2, 3, 32, 32)).shape == (2, 320)


def test_efficientnet_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    model = create_model("efficientnet-b0-cifar", channels=3, num_classes=4, size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # no drop-connect or dropout at evaluation


def test_resnets_load_imagenet1k_v1(tmp_path, monkeypatch) -> None:
    """The paper's torchvision 0.9 weights (IMAGENET1K_V1), also under their old file name."""
    import torchvision.models as tvm

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    net = tvm.resnet18(weights=None)
    torch.nn.init.constant_(net.fc.weight, 0.5)
    torch.save(net.state_dict(), tmp_path / "checkpoints" / "resnet18-5c106cde.pth")
    model = create_model("resnet18", channels=3, num_classes=3, size=32, pretrained=True)
    assert torch.equal(model.body[0].weight, net.conv1.weight)
    assert tvm.ResNet50_Weights.IMAGENET1K_V1.url.endswith("resnet50-0676ba61.pth")
    (tmp_path / "checkpoints" / "resnet18-5c106cde.pth").rename(
        tmp_path / "checkpoints" / "resnet18-f37072fd.pth"  # IMAGENET1K_V1's current name
    )
    model = create_model("resnet18", channels=3, num_classes=3, size=32, pretrained=True)
    assert torch.equal(model.body[0].weight, net.conv1.weight)


def test_salem_cnn_pools_before_relu_yet_computes_the_papers_network() -> None:
    """Same outputs and gradients, bit for bit, as conv-ReLU-pool with the same weights."""
    torch.manual_seed(0)
    model = create_model("salem-cnn", channels=3, num_classes=10, size=32)
    conv1, conv2 = model.body[0][0], model.body[0][3]
    fc = model.body[1]
    paper = torch.nn.Sequential(
        conv1, torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        conv2, torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), fc, torch.nn.ReLU(), model.head,
    )  # fmt: skip
    x = torch.randn(16, 3, 32, 32)
    out = model(x)
    assert torch.equal(out, paper(x))
    grads = []
    for net in (model, paper):
        net.zero_grad()
        net(x).logsumexp(1).sum().backward()
        grads.append([p.grad.clone() for p in (conv1.weight, conv2.weight, fc.weight)])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
