from __future__ import annotations

import dataclasses

import pytest
import torch

from mistrust.config import TrainConfig
from mistrust.data.images import Preprocess
from mistrust.models import create_model
from mistrust.training import flip_crop, train_model

PRE = Preprocess(1, 12, (0.5,), (0.25,))


def _data(n: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = (torch.rand(n, 1, 12, 12, generator=g) * 80 + y.view(-1, 1, 1, 1) * 60).to(torch.uint8)
    return x, y


def _model() -> torch.nn.Module:
    torch.manual_seed(1)
    return create_model("mlp", channels=1, num_classes=3, size=12, width=16)


@pytest.mark.parametrize("augment", ["none", "flip-crop"])
def test_resume_after_interruption_gives_identical_weights(tmp_path, augment: str) -> None:
    x, y = _data()
    cfg = TrainConfig(epochs=4, batch_size=16, lr=0.01)
    full = _model()
    train_model(full, x, y, PRE, cfg, seed=3, augment=augment)
    # "crash" after two epochs, then resume from the checkpoint with a fresh model
    ckpt = tmp_path / "m.ckpt.pt"
    train_model(
        _model(),
        x,
        y,
        PRE,
        dataclasses.replace(cfg, epochs=2),
        seed=3,
        augment=augment,
        checkpoint=ckpt,
        fingerprint="f",
    )
    torch.manual_seed(12345)  # a different global RNG state must not matter
    resumed = _model()
    hist = train_model(
        resumed, x, y, PRE, cfg, seed=3, augment=augment, checkpoint=ckpt, fingerprint="f"
    )
    assert hist.resumed_from == 2 and len(hist.loss) == 4
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "every, saved, resumed",
    [(1e9, [1, 6], [4, 6]), (0.0, [1, 2, 3, 4, 5, 6], [4, 5, 6])],
)
def test_checkpoints_after_the_first_and_last_epoch_and_every_so_often(
    tmp_path, monkeypatch, every: float, saved: list[int], resumed: list[int]
) -> None:
    import mistrust.training.trainer as trainer

    epochs = []
    save = trainer.atomic_torch_save
    monkeypatch.setattr(trainer, "CHECKPOINT_SECONDS", every)
    monkeypatch.setattr(
        trainer,
        "atomic_torch_save",
        lambda path, obj: epochs.append(obj["epoch"]) or save(path, obj),
    )
    x, y = _data()
    cfg = TrainConfig(epochs=6, batch_size=32)
    train_model(_model(), x, y, PRE, cfg, seed=0, checkpoint=tmp_path / "c.pt", fingerprint="f")
    assert epochs == saved
    # a run resumed after epoch 3 saves after its first epoch (4) and its last
    epochs.clear()
    (tmp_path / "c.pt").unlink()
    train_model(_model(), x, y, PRE, dataclasses.replace(cfg, epochs=3), seed=0,
                checkpoint=tmp_path / "c.pt", fingerprint="f")  # fmt: skip
    epochs.clear()
    hist = train_model(_model(), x, y, PRE, cfg, seed=0, checkpoint=tmp_path / "c.pt",
                       fingerprint="f")  # fmt: skip
    assert hist.resumed_from == 3 and epochs == resumed


def test_checkpoint_of_other_config_is_ignored(tmp_path) -> None:
    x, y = _data()
    ckpt = tmp_path / "c.pt"
    cfg = TrainConfig(epochs=1, batch_size=32)
    train_model(_model(), x, y, PRE, cfg, seed=0, checkpoint=ckpt, fingerprint="a")
    hist = train_model(_model(), x, y, PRE, cfg, seed=0, checkpoint=ckpt, fingerprint="b")
    assert hist.resumed_from == 0


def test_training_learns_and_label_smoothing_zero_is_plain_ce() -> None:
    x, y = _data()
    cfg = TrainConfig(epochs=15, batch_size=16, lr=0.01)
    a, b = _model(), _model()
    ha = train_model(a, x, y, PRE, cfg, seed=0)
    train_model(b, x, y, PRE, dataclasses.replace(cfg, label_smoothing=0.0), seed=0)
    assert ha.accuracy[-1] > 0.9 and ha.loss[-1] < ha.loss[0]
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_flip_crop_shapes_and_content() -> None:
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float).view(2, 1, 4, 4)
    g = torch.Generator().manual_seed(0)
    out = flip_crop(x, g, pad=0)
    assert out.shape == x.shape
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
