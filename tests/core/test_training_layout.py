"""The speed settings of ``train_model`` (channels-last, fused optimiser) keep its guarantees."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from mistrust.config import TrainConfig
from mistrust.core.outputs import compute_outputs, inference_layout
from mistrust.data.images import Preprocess
from mistrust.models import create_model
from mistrust.training import make_optimizer, train_model

PRE = Preprocess(1, 16, (0.5,), (0.25,))


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = (torch.rand(n, 1, 16, 16, generator=g) * 80 + y.view(-1, 1, 1, 1) * 60).to(torch.uint8)
    return x, y


def _cnn() -> torch.nn.Module:
    torch.manual_seed(1)
    return create_model("salem-cnn", channels=1, num_classes=3, size=16, width=16)


def test_cnn_resume_is_bit_identical(tmp_path) -> None:
    x, y = _data()
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.01)
    full = _cnn()
    train_model(full, x, y, PRE, cfg, seed=3)
    ckpt = tmp_path / "m.ckpt.pt"
    half = dataclasses.replace(cfg, epochs=1)
    train_model(_cnn(), x, y, PRE, half, seed=3, checkpoint=ckpt, fingerprint="f")
    resumed = _cnn()
    train_model(resumed, x, y, PRE, cfg, seed=3, checkpoint=ckpt, fingerprint="f")
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_trained_model_is_contiguous_and_matches_a_reloaded_copy() -> None:
    x, y = _data()
    model = _cnn()
    train_model(model, x, y, PRE, TrainConfig(epochs=1, batch_size=16), seed=0)
    assert all(p.is_contiguous() for p in model.parameters())
    reloaded = _cnn()
    reloaded.load_state_dict(model.state_dict())
    a = compute_outputs(model, PRE(x), y)
    b = compute_outputs(reloaded.eval(), PRE(x), y)
    assert (a.logits == b.logits).all() and (a.features == b.features).all()


def test_inference_layout_converts_once_with_the_same_outputs() -> None:
    x, y = _data()
    model = _cnn().eval()
    alone = [compute_outputs(model, PRE(x[i::2]), y[i::2]) for i in range(2)]
    weights = [p for p in model.parameters() if p.dim() == 4]  # the convolutions
    assert weights and all(w.is_contiguous() for w in weights)  # handed back contiguous
    with inference_layout(model):
        assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
        storage = [w.data_ptr() for w in weights]
        inside = [compute_outputs(model, PRE(x[i::2]), y[i::2]) for i in range(2)]
        # no copy of the weights per call: the same storage, still channels-last
        assert [w.data_ptr() for w in weights] == storage
        assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert all(w.is_contiguous() for w in weights)
    for a, b in zip(alone, inside, strict=True):
        assert (a.logits == b.logits).all() and (a.features == b.features).all()


def test_optimizer_is_fused_on_cpu() -> None:
    for name in ("adam", "sgd"):
        opt = make_optimizer(_cnn(), TrainConfig(optimizer=name))
        assert opt.defaults["fused"] is True


def test_cpu_chunks_of_a_convnet_give_the_outputs_of_one_batch(monkeypatch) -> None:
    """On a CPU a convnet answers CPU_CONV_BATCH inputs at a time, with the outputs of a
    single pass up to float rounding (the matrix products may sum in another order)."""
    import mistrust.core.outputs as outputs

    x, y = _data(200)
    model = _cnn().eval()
    monkeypatch.setattr(outputs, "CPU_CONV_BATCH", 1024)
    whole = compute_outputs(model, PRE(x), y, batch_size=1024)
    monkeypatch.setattr(outputs, "CPU_CONV_BATCH", 64)
    seen = []
    forward = model.features
    monkeypatch.setattr(model, "features", lambda t: seen.append(len(t)) or forward(t))
    chunked = compute_outputs(model, PRE(x), y, batch_size=1024)
    assert seen == [64, 64, 64, 8]
    np.testing.assert_allclose(chunked.logits, whole.logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(chunked.features, whole.features, rtol=1e-5, atol=1e-6)
