import logging
import pickle
import time

import pytest
import torch
from torch import nn

import mistrust.data.gan as gan_module
from mistrust.data.gan import (
    load_generator_module,
    load_or_train_gan,
    sample_gan,
    train_gan,
)

TINY = dict(epochs=1, batch_size=64, latent_dim=8, width=4)


def _images(n: int = 128, c: int = 1, s: int = 28, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, c, s, s), generator=g, dtype=torch.uint8)


def _must_not_train(*args, **kwargs):
    raise AssertionError("the cached GAN should have been loaded")


def _weights(m: nn.Module) -> list[torch.Tensor]:
    return [v for v in m.state_dict().values()]


@pytest.fixture(scope="module")
def conditional():
    labels = torch.arange(128) % 4
    return train_gan(_images(), labels=labels, **TINY)


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = train_gan(_images(64), seed=3, **TINY)
    assert torch.equal(torch.rand(3), expected)  # caller's RNG stream unchanged
    b = train_gan(_images(64), seed=3, **TINY)
    c = train_gan(_images(64), seed=4, **TINY)
    assert all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(b), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(_weights(a), _weights(c), strict=True))


def test_sample_shape_dtype_and_determinism(conditional):
    x = sample_gan(conditional, 10, seed=1, batch_size=4)
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.uint8
    assert torch.equal(x, sample_gan(conditional, 10, seed=1))  # batch size does not matter
    assert not torch.equal(x, sample_gan(conditional, 10, seed=2))
    assert sample_gan(conditional, 3, seed=0, size=14).shape == (3, 1, 14, 14)
    assert conditional.c_dim == 4


def test_sample_chosen_classes(conditional):
    a = sample_gan(conditional, 6, seed=0, classes=torch.zeros(6, dtype=torch.long))
    b = sample_gan(conditional, 6, seed=0, classes=torch.full((6,), 3))
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="classes"):
        sample_gan(conditional, 6, seed=0, classes=torch.zeros(5, dtype=torch.long))


def test_rgb_32_and_other_sizes_unconditional():
    g32 = train_gan(_images(64, c=3, s=32), **TINY)
    assert g32.c_dim == 0
    assert sample_gan(g32, 5, seed=0).shape == (5, 3, 32, 32)
    with pytest.raises(ValueError, match="unconditional"):
        sample_gan(g32, 2, seed=0, classes=torch.zeros(2, dtype=torch.long))
    g40 = train_gan(_images(64, c=3, s=40), **TINY)  # trained at 32, resized back
    assert g40.size == 32 and g40.out_size == 40
    assert sample_gan(g40, 5, seed=0).shape == (5, 3, 40, 40)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        train_gan(_images().float(), **TINY)
    with pytest.raises(ValueError, match="labels"):
        train_gan(_images(), labels=torch.zeros(3, dtype=torch.long), **TINY)


def test_cache_second_call_loads(tmp_path, caplog, monkeypatch):
    images, labels = _images(), torch.arange(128) % 3
    kw = dict(cache_dir=tmp_path, labels=labels, seed=0, **TINY)
    with caplog.at_level(logging.DEBUG, logger="mistrust.data.gan"):
        first = load_or_train_gan(images, **kw)
        files = list(tmp_path.glob("gan-*.pt"))
        assert len(files) == 1 and len(files[0].stem) == len("gan-") + 16
        monkeypatch.setattr(gan_module, "train_gan", _must_not_train)
        t = time.perf_counter()
        second = load_or_train_gan(images, **kw)
        assert time.perf_counter() - t < 2.0
        monkeypatch.undo()
    assert "trained GAN" in caplog.text and "loaded cached GAN" in caplog.text
    assert not list(tmp_path.glob("*.tmp"))
    assert torch.equal(sample_gan(first, 8, seed=5), sample_gan(second, 8, seed=5))
    load_or_train_gan(images, **{**kw, "seed": 1})  # other hyper-parameters: a new file
    assert len(list(tmp_path.glob("gan-*.pt"))) == 2


def _tiny_module(z_dim: int = 5) -> nn.Module:
    return nn.Sequential(nn.Linear(z_dim, 3 * 8 * 8), nn.Tanh(), nn.Unflatten(1, (3, 8, 8)))


def test_load_generator_refuses_pickle_without_opt_in(tmp_path):
    path = tmp_path / "g.pt"
    torch.save(_tiny_module(), path)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_generator_module(path)


@pytest.mark.parametrize("writer", ["torch", "pickle", "stylegan-dict"])
def test_load_generator_happy_path(tmp_path, caplog, writer):
    module = _tiny_module()
    path = tmp_path / "g.pkl"
    if writer == "torch":
        module.z_dim = 5
        torch.save(module, path)
    else:
        obj = {"G_ema": module} if writer == "stylegan-dict" else module
        with open(path, "wb") as fh:
            pickle.dump(obj, fh)
    with caplog.at_level(logging.WARNING, logger="mistrust.data.gan"):
        g = load_generator_module(path, allow_pickle=True, latent_dim=5)
    assert "allow_pickle" in caplog.text
    assert g.z_dim == 5
    x = sample_gan(g, 4, seed=0, size=16)
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.uint8


def test_load_generator_needs_z_dim(tmp_path):
    path = tmp_path / "g.pt"
    torch.save(_tiny_module(), path)
    with pytest.raises(ValueError, match="z_dim"):
        load_generator_module(path, allow_pickle=True)


def test_damaged_cache_file_is_retrained(tmp_path) -> None:
    import torch

    from mistrust.data.gan import load_or_train_gan, sample_gan

    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    kw = {"cache_dir": tmp_path, "epochs": 1, "batch_size": 32, "width": 4, "seed": 0}
    first = sample_gan(load_or_train_gan(images, **kw), 4, seed=1)
    (cached,) = tmp_path.glob("gan-*.pt")
    cached.write_bytes(cached.read_bytes()[:100])  # truncated by a crash or a full disk
    again = sample_gan(load_or_train_gan(images, **kw), 4, seed=1)
    assert torch.equal(first, again)


def test_cpu_training_uses_one_thread_whatever_the_callers_count(monkeypatch) -> None:
    """The GAN trains with one torch thread (the same weights on any core count) and
    gives the caller its thread count back."""
    seen = []
    real = gan_module.Generator.forward

    def spy(self, z, c=None):
        seen.append(torch.get_num_threads())
        return real(self, z, c)

    monkeypatch.setattr(gan_module.Generator, "forward", spy)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = train_gan(_images(), seed=3, **TINY)
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        b = train_gan(_images(), seed=3, **TINY)
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        assert torch.equal(wa, wb)
