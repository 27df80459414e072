import pytest
import torch

from mistrust.data.perturb import noise_images, permute_pixels, scale


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int = 6, c: int = 3, s: int = 8) -> torch.Tensor:
    return torch.randn(n, c, s, s, generator=_gen(123))


def test_permutation_keeps_pixel_values_per_channel():
    x = _images()
    y = permute_pixels(x, generator=_gen())
    assert y.shape == x.shape and y.dtype == x.dtype
    for i in range(x.shape[0]):
        for ch in range(x.shape[1]):
            assert torch.equal(x[i, ch].flatten().sort().values, y[i, ch].flatten().sort().values)
    assert not torch.equal(x, y)


def test_permutation_moves_channels_together():
    # encode the position in channel 0 and a function of it in the other channels
    n, s = 4, 7
    pos = torch.arange(s * s, dtype=torch.float32).view(1, 1, s, s).expand(n, 1, s, s)
    x = torch.cat([pos, 2 * pos + 1, -pos], dim=1)
    y = permute_pixels(x, generator=_gen(1))
    assert torch.equal(y[:, 1], 2 * y[:, 0] + 1)
    assert torch.equal(y[:, 2], -y[:, 0])


def test_images_get_different_permutations():
    n, s = 5, 6
    x = torch.arange(s * s, dtype=torch.float32).view(1, 1, s, s).repeat(n, 1, 1, 1)
    y = permute_pixels(x, generator=_gen(2)).flatten(1)
    assert len({tuple(row.tolist()) for row in y}) == n


def test_permutation_is_deterministic_under_seed():
    x = _images()
    assert torch.equal(permute_pixels(x, generator=_gen(5)), permute_pixels(x, generator=_gen(5)))
    assert not torch.equal(
        permute_pixels(x, generator=_gen(5)), permute_pixels(x, generator=_gen(6))
    )


def test_permutation_rejects_wrong_rank():
    with pytest.raises(ValueError, match="N, C, H, W"):
        permute_pixels(torch.zeros(3, 8, 8), generator=_gen())


def test_scale_multiplies():
    x = _images()
    assert torch.equal(scale(x, 255.0), 255.0 * x)
    assert torch.equal(scale(x, 1.0), x)


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_noise_shape_dtype_range_and_reproducibility(kind):
    a = noise_images(64, channels=3, size=16, kind=kind, generator=_gen(7))
    b = noise_images(64, channels=3, size=16, kind=kind, generator=_gen(7))
    c = noise_images(64, channels=3, size=16, kind=kind, generator=_gen(8))
    assert a.shape == (64, 3, 16, 16) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    mean = a.float().mean().item()
    assert 120 < mean < 135
    if kind == "uniform":
        assert a.min() == 0 and a.max() == 255
    else:
        assert 55 < a.float().std().item() < 70


def test_noise_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown noise kind"):
        noise_images(4, channels=1, size=8, kind="salt", generator=_gen())
