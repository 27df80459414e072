"""The paper's data pipeline options: centre crops, the Dogs augmentation, OOD sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mistrust.config import ConfigError, load_config
from mistrust.data.evalsets import EvalContext, build_evalset
from mistrust.data.folders import load_folder
from mistrust.data.images import ImageSet, Preprocess
from mistrust.training.trainer import rotate_crop_flip


def _stripes(path, colours: list[tuple[int, int, int]], width: int = 10, height: int = 10) -> None:
    """An image of vertical stripes, each ``width`` pixels wide."""
    arr = np.concatenate([np.full((height, width, 3), c, np.uint8) for c in colours], axis=1)
    Image.fromarray(arr).save(path)


def test_center_crop_keeps_aspect_and_centre(tmp_path) -> None:
    # 40 x 10 image: red | green | green | blue. Short side 10 -> 10 already; the centre
    # 10 x 10 crop is columns 15..24: green only. Squashing keeps red on the left.
    _stripes(tmp_path / "a.png", [(255, 0, 0), (0, 255, 0), (0, 255, 0), (0, 0, 255)])
    crop = load_folder(tmp_path, size=10, fit="center-crop").images[0]
    assert crop.shape == (3, 10, 10)
    assert (crop[1] == 255).all() and (crop[0] == 0).all() and (crop[2] == 0).all()
    squash = load_folder(tmp_path, size=10, fit="squash").images[0]
    assert squash[0, :, 0].float().mean() > 200  # red at the left edge
    with pytest.raises(ValueError, match="fit"):
        load_folder(tmp_path, size=10, fit="stretch")


def test_center_crop_rounds_like_torchvision(tmp_path) -> None:
    # 30 x 20 to 10: Resize(10) gives int(10 * 30 / 20) = 15 x 10, CenterCrop offset round(2.5) = 2
    arr = np.zeros((20, 30, 3), np.uint8)
    arr[:, :4] = 255  # white columns 0..3 -> 0..1 after the resize: cropped away
    Image.fromarray(arr).save(tmp_path / "b.png")
    img = load_folder(tmp_path, size=10, fit="center-crop").images[0]
    assert img.shape == (3, 10, 10) and int(img.max()) < 128


def test_rotate_crop_flip_without_rotation_is_a_crop_or_its_mirror() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = rotate_crop_flip(x, 6, torch.Generator().manual_seed(0), degrees=0.0)
    assert out.shape == (2, 3, 6, 6)
    for i in range(2):
        crops = [x[i, :, dy : dy + 6, dx : dx + 6] for dy in range(3) for dx in range(3)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1)) for c in crops)


def test_rotation_fills_corners_with_zero() -> None:
    x = torch.ones(16, 1, 64, 64)
    out = rotate_crop_flip(x, 64, torch.Generator().manual_seed(1), degrees=20.0)
    zeros = (out == 0).flatten(1).sum(1)
    # a corner pixel moves by ~45 px * angle: zeros appear unless |angle| < ~0.6 degrees
    assert (zeros > 0).sum() >= 14
    assert set(out.unique().tolist()) <= {0.0, 1.0}  # nearest neighbour: no blending
    assert (out[:, :, 24:40, 24:40] == 1).all()  # the centre stays
    assert zeros.max() < 64 * 64 * 0.2  # at most 20 degrees: the corners only


def _ctx(**kw) -> EvalContext:
    pre = Preprocess(1, 8, (0.3,), (0.4,))
    empty = ImageSet(torch.zeros(0, 1, 8, 8, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))
    base = dict(
        preprocess=pre,
        nonmembers=empty,
        held_out=None,
        gan_data=empty,
        size=100,
        seed=0,
        root=None,
        download=False,
        cache_dir=None,
    )
    return EvalContext(**{**base, **kw})


def test_ood_split_and_full_sets() -> None:
    from mistrust.data.sources import load_source

    train, test = load_source("digits", split="train"), load_source("digits", split="test")
    got = build_evalset("digits", _ctx(ood_split="train", full_sets=("digits",)))
    assert len(got.x) == len(train)  # whole train half, not sampled down to 100
    expected = Preprocess(1, 8, (0.3,), (0.4,))(train.images)
    torch.testing.assert_close(got.x, expected)
    sampled = build_evalset("digits", _ctx(ood_split="test"))
    assert len(sampled.x) == 100 and len(test) > 100
    with pytest.raises(ValueError, match="no full size"):
        build_evalset("noise", _ctx(full_sets=("noise",)))


def test_afhq_nondog_is_cats_and_wild_from_train(tmp_path) -> None:
    for split, animal, n in [("train", "cat", 3), ("train", "wild", 2), ("train", "dog", 4)]:
        (tmp_path / "afhq" / split / animal).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (12, 12), 40 * i).save(tmp_path / "afhq" / split / animal / f"{i}.png")
    ctx = _ctx(root=str(tmp_path), ood_split="train", full_sets=("afhq-nondog", "afhq-dog"))
    assert len(build_evalset("afhq-nondog", ctx).x) == 5
    assert len(build_evalset("afhq-dog", ctx).x) == 4
    with pytest.raises(Exception, match="afhq/val/dog"):  # the test split reads afhq/val
        build_evalset("afhq-dog", _ctx(root=str(tmp_path), ood_split="test"))


def test_calibration_needs_held_out_data_or_the_nonmembers() -> None:
    tight = ["data.test_size=50", "data.nonmembers=50", "variants.names=[base, temperature-fit]"]
    from mistrust.study.plan import check_plan

    with pytest.raises(ConfigError, match="variants.calibration_set: nonmembers"):
        check_plan(load_config("smoke", tight))
    cfg = load_config("smoke", [*tight, "variants.calibration_set=nonmembers"])
    assert cfg.variants.calibration_set == "nonmembers"
    check_plan(cfg)
    dogs = load_config("paper-stanford-dogs-resnet50")
    assert dogs.data.test_size == dogs.data.nonmembers  # feasible only through the non-members
    assert dogs.variants.calibration_set == "nonmembers"
    with pytest.raises(ConfigError, match="laplace_method: paper searches"):
        load_config("paper-cifar10-salemcnn", ["variants.laplace_prior=marglik"])
    for bad in ["data.fit=stretch", "eval.ood_split=val", "eval.full_sets=[noise]"]:
        with pytest.raises(ConfigError):
            load_config("smoke", [bad])
    with pytest.raises(ConfigError, match="load_size"):
        load_config("smoke", ["data.image_size=8", "data.load_size=6"])


def test_paper_presets_set_the_papers_choices() -> None:
    for name in ("paper-cifar10-salemcnn", "paper-cifar10-resnet18", "paper-cifar10-efficientnet"):
        cfg = load_config(name)
        a, v = cfg.attacks, cfg.variants
        assert (a.strict_threshold, a.score_precision, a.salem_score, a.aupr) == (
            True,
            "float32",
            "sigmoid",
            "trapezoid",
        )
        assert (v.laplace_method, v.laplace_grid, v.laplace_search_samples) == ("paper", 100, 10)
        assert v.laplace_samples == 100 and v.calibration_set == "nonmembers"
        assert a.salem_rows is None  # Salem's MLP on every shadow row, as the paper trained it
        assert cfg.eval.ood_split == "train"
    dogs = load_config("paper-stanford-dogs-resnet50")
    assert dogs.attacks.salem_rows is None
    assert (dogs.data.load_size, dogs.data.image_size) == (230, 224)
    assert (dogs.data.fit, dogs.data.augment) == ("center-crop", "rotate-crop-flip")
    assert "afhq-nondog" in dogs.eval.sets and "afhq-nondog" in dogs.eval.full_sets
    default = load_config("default")
    assert default.variants.laplace_method == "laplace-torch" and default.attacks.aupr == (
        "average-precision"
    )
