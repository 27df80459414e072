"""Every evaluation set is built as documented, checked against a direct computation.

Documented (README, "Evaluation sets"): every set goes through the
target's transform ``(pixels / 255 - mean) / std``; ``scaled`` multiplies that
normalised tensor by ``eval.scale_factor`` (default 255); ``permuted`` draws one
H x W permutation per image and applies it to the normalised tensor, all
channels alike; ``unnormalized`` is the raw ``[0, 1]`` pixels; ``held-out`` holds
test images of the held-out classes; other datasets go through the target's
transform too. Sets without a class carry label -1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from protocol_helpers import HELD_OUT_CLASS, run_model

from mistrust.config import EvalConfig
from mistrust.data.evalsets import EvalContext, build_evalset
from mistrust.data.images import ImageSet, Preprocess
from mistrust.data.sources import get_source, load_source
from mistrust.io import load_npz

MEAN, STD = (0.2, 0.5, 0.7), (0.25, 0.1, 0.4)


def unit(images: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Pixels / 255, resized (bilinear, antialiased) to ``size`` when given."""
    x = images.float() / 255.0
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    return x


def normalised(images: torch.Tensor, mean=MEAN, std=STD, size: int | None = None) -> torch.Tensor:
    """The documented transform, written out: ``(pixels / 255 - mean) / std`` per channel."""
    x = unit(images, size).double()
    m = torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)
    return ((x - m) / s).float()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> EvalContext:
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (6, 3, 5, 5), generator=g, dtype=torch.uint8)
    held = torch.randint(0, 256, (4, 3, 5, 5), generator=g, dtype=torch.uint8)
    return EvalContext(
        preprocess=Preprocess(3, 5, MEAN, STD),
        nonmembers=ImageSet(images, torch.arange(6) % 3),
        held_out=ImageSet(held, torch.full((4,), 7)),
        gan_data=ImageSet(images, torch.arange(6) % 3),
        size=6,
        seed=11,
        root=None,
        download=False,
        cache_dir=tmp_path_factory.mktemp("cache"),
    )


def test_documented_scale_factor_default() -> None:
    assert EvalConfig().scale_factor == 255.0
    assert EvalContext.__dataclass_fields__["scale_factor"].default == 255.0


def test_original_is_the_normalised_nonmembers(ctx) -> None:
    s = build_evalset("original", ctx)
    torch.testing.assert_close(s.x, normalised(ctx.nonmembers.images))
    assert torch.equal(s.labels, ctx.nonmembers.labels)
    assert torch.equal(s.display, ctx.nonmembers.images)


@pytest.mark.parametrize("factor", [255.0, 3.5])
def test_scaled_is_normalised_times_factor(ctx, factor: float) -> None:
    from dataclasses import replace

    s = build_evalset("scaled", replace(ctx, scale_factor=factor))
    torch.testing.assert_close(
        s.x, normalised(ctx.nonmembers.images) * factor, rtol=2e-5, atol=1e-5
    )
    assert torch.equal(s.labels, ctx.nonmembers.labels)
    assert torch.equal(s.display, ctx.nonmembers.images)  # shown as the unscaled image
    assert s.note == f"x{factor:g}"


def test_unnormalized_is_raw_unit_pixels(ctx) -> None:
    s = build_evalset("unnormalized", ctx)
    torch.testing.assert_close(s.x, ctx.nonmembers.images.float() / 255.0)
    assert torch.equal(s.labels, ctx.nonmembers.labels)
    assert torch.equal(s.display, ctx.nonmembers.images)


def _recover_permutation(moved: torch.Tensor, source: torch.Tensor) -> np.ndarray:
    """For ``(C, H, W)`` images: ``p`` with ``moved[:, k] == source[:, p[k]]`` (flattened)."""
    c = source.shape[0]
    src = source.reshape(c, -1).T.numpy()  # (HW, C) colour vectors
    dst = moved.reshape(c, -1).T.numpy()
    perm = []
    for vec in dst:
        hits = np.flatnonzero(np.all(np.isclose(src, vec, atol=1e-6), axis=1))
        assert len(hits) == 1, "each permuted pixel is exactly one pixel of the source image"
        perm.append(hits[0])
    return np.array(perm)


def test_permuted_moves_normalised_pixels_as_whole_colour_vectors(ctx) -> None:
    s = build_evalset("permuted", ctx)
    norm = normalised(ctx.nonmembers.images)
    perms = []
    for i in range(len(norm)):
        p = _recover_permutation(s.x[i], norm[i])
        assert sorted(p) == list(range(25)), "a permutation of the H x W positions"
        assert not np.array_equal(p, np.arange(25)), "the positions really move"
        # the gallery shows the same permutation of the raw image
        flat = ctx.nonmembers.images[i].reshape(3, -1)[:, p].reshape(3, 5, 5)
        assert torch.equal(s.display[i], flat)
        perms.append(tuple(p))
    assert len(set(perms)) == len(perms), "one permutation per image"
    assert torch.equal(s.labels, ctx.nonmembers.labels)
    # seeded: the same context gives the same set
    torch.testing.assert_close(build_evalset("permuted", ctx).x, s.x)


def test_held_out_classes_through_the_transform_without_labels(ctx) -> None:
    s = build_evalset("held-out", ctx)
    torch.testing.assert_close(s.x, normalised(ctx.held_out.images))
    assert (s.labels == -1).all()
    from dataclasses import replace

    with pytest.raises(ValueError, match="held_out_classes"):
        build_evalset("held-out", replace(ctx, held_out=None))


def test_size_limits_a_set_to_a_seeded_subset(ctx) -> None:
    from dataclasses import replace

    small = replace(ctx, size=2)
    s = build_evalset("held-out", small)
    full = normalised(ctx.held_out.images)
    assert len(s.x) == 2
    rows = [int(torch.nonzero((full - x).abs().amax((1, 2, 3)) < 1e-6)[0]) for x in s.x]
    assert len(set(rows)) == 2 and rows == sorted(rows)  # distinct images, pool order
    torch.testing.assert_close(build_evalset("held-out", small).x, s.x)


@pytest.mark.parametrize("kind", ["noise", "noise-gaussian"])
def test_noise_goes_through_the_targets_transform(ctx, kind: str) -> None:
    s = build_evalset(kind, ctx)
    assert s.x.shape == (6, 3, 5, 5) and (s.labels == -1).all()
    # x is the normalised version of the displayed uint8 pixels
    torch.testing.assert_close(s.x, normalised(s.display))
    assert s.display.float().std() > 20  # really random pixels


def test_other_dataset_uses_the_targets_statistics_and_size(tmp_path: Path) -> None:
    """``digits`` as an evaluation set of a 3-channel 12 x 12 target: the digits test split
    resized to the target's size, grey copied to all channels, the TARGET's mean and std."""
    from dataclasses import replace

    ctx = EvalContext(
        preprocess=Preprocess(3, 12, MEAN, STD),
        nonmembers=ImageSet(torch.zeros((1, 3, 12, 12), dtype=torch.uint8), torch.zeros(1)),
        held_out=None,
        gan_data=ImageSet(torch.zeros((1, 3, 12, 12), dtype=torch.uint8), torch.zeros(1)),
        size=10_000,
        seed=0,
        root=None,
        download=False,
        cache_dir=tmp_path,
    )
    s = build_evalset("digits", ctx)
    raw = load_source("digits", split="test", size=12, channels=1).images
    assert s.x.shape == (len(raw), 3, 12, 12)
    torch.testing.assert_close(s.x, normalised(raw.expand(-1, 3, -1, -1), size=12))
    assert (s.labels == -1).all()
    assert len(build_evalset("digits", replace(ctx, size=7)).x) == 7


def test_folder_sets_take_precedence_and_unknown_names_fail(ctx, tmp_path: Path) -> None:
    from dataclasses import replace

    with pytest.raises(ValueError, match="unknown evaluation set"):
        build_evalset("no-such-set", ctx)
    folder = tmp_path / "imgs"
    folder.mkdir()
    from PIL import Image

    pixels = np.arange(75, dtype=np.uint8).reshape(5, 5, 3) * 3
    Image.fromarray(pixels).save(folder / "a.png")
    s = build_evalset("scaled", replace(ctx, folders={"scaled": str(folder)}))
    torch.testing.assert_close(s.x, normalised(torch.from_numpy(pixels).permute(2, 0, 1)[None]))
    assert (s.labels == -1).all()
    for i in range(3):
        Image.fromarray(pixels // (i + 2)).save(folder / f"b{i}.png")
    small = replace(ctx, size=2, folders={"scaled": str(folder)})
    got = build_evalset("scaled", small).x
    assert len(got) == 2  # eval.size caps folder sets too, with a seeded choice
    torch.testing.assert_close(build_evalset("scaled", small).x, got)


# --- the same sets inside the shared run -------------------------------------------------


def _nonmembers(data) -> ImageSet:
    return data.test.subset(data.splits["target_nonmembers"])


def test_run_sets_are_the_documented_transforms_of_the_raw_images(
    pipeline, data, target_model
) -> None:
    """The target's cached outputs on each set equal the target applied to inputs computed
    here from the raw digits images with the dataset's published mean and std."""
    spec = get_source("digits")
    raw = _nonmembers(data).images
    assert raw.shape[-1] == 8  # digits are 8 x 8; the target sees them at 28 x 28
    norm = normalised(raw, spec.mean, spec.std, size=28)
    want = {
        "original": norm,
        "scaled": norm * 255.0,
        "unnormalized": unit(raw, 28),
    }
    out_dir = pipeline.run_dir / "outputs/base/target"
    for name, x in want.items():
        got = load_npz(out_dir / f"{name}.npz") if name != "original" else None
        logits = run_model(target_model, x)
        if got is None:  # "original" is the attack non-members of the test split
            test = load_npz(out_dir / "test.npz")
            pos = np.searchsorted(data.splits["target_test"], data.splits["target_nonmembers"])
            got = {"logits": test["logits"][pos], "labels": test["labels"][pos]}
        np.testing.assert_allclose(got["logits"], logits, rtol=1e-4, atol=1e-4, err_msg=name)
        np.testing.assert_array_equal(got["labels"], _nonmembers(data).labels.numpy())
    # the documented magnitude of the scaled set
    assert float((norm * 255.0).abs().max()) > 100


def test_run_permuted_set_is_a_per_image_permutation_of_the_normalised_nonmembers(
    pipeline, data, target_model
) -> None:
    from mistrust.experiment import build_evalsets

    spec = get_source("digits")
    norm = normalised(_nonmembers(data).images, spec.mean, spec.std, size=28)
    sets = build_evalsets(pipeline.cfg, data, pipeline.run_dir / "cache", "cpu", False)
    x = sets["permuted"].x
    for i in range(len(norm)):
        torch.testing.assert_close(x[i].flatten().sort().values, norm[i].flatten().sort().values)
    assert not torch.allclose(x, norm)
    got = load_npz(pipeline.run_dir / "outputs/base/target/permuted.npz")
    np.testing.assert_allclose(got["logits"], run_model(target_model, x), rtol=1e-4, atol=1e-4)


def test_run_held_out_set_is_the_held_out_class_only(pipeline, data, target_model) -> None:
    spec = get_source("digits")
    raw = load_source("digits", split="test", size=28, channels=1)
    pool = normalised(raw.images[raw.labels == HELD_OUT_CLASS], spec.mean, spec.std, size=28)
    got = load_npz(pipeline.run_dir / "outputs/base/target/held-out.npz")
    n = min(len(pool), pipeline.cfg.data.nonmembers)
    assert got["logits"].shape[0] == n and (got["labels"] == -1).all()
    # every row is the target's output on a distinct class-9 test image
    pool_logits = run_model(target_model, pool)
    rows = []
    for row in got["logits"]:
        hits = np.flatnonzero(np.abs(pool_logits - row).max(1) < 1e-4)
        assert len(hits) >= 1
        rows.append(hits[0])
    assert len(set(rows)) == n
    # and the model never saw the class: it has one output fewer
    assert got["logits"].shape[1] == 9
