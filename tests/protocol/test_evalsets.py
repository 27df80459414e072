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


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_noise_is_seeded_apart_from_the_run_seed(ctx, kind: str) -> None:
    """The noise images are drawn with the run's seed + 1 (same seed, same bytes; not the
    stream that draws the permutations and subsets), at the context's size and shape."""
    from mistrust.data.perturb import noise_images

    name = "noise" if kind == "uniform" else "noise-gaussian"
    g = torch.Generator().manual_seed(11 + 1)
    want = noise_images(6, channels=3, size=5, kind=kind, generator=g)
    assert torch.equal(build_evalset(name, ctx).display, want)


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
    from dataclasses import replace

    from mistrust.study.data import build_evalsets

    spec = get_source("digits")
    norm = normalised(_nonmembers(data).images, spec.mean, spec.std, size=28)
    # the run's own set builder, asked for the permuted set only (no GAN to train again)
    cfg = replace(pipeline.cfg, eval=replace(pipeline.cfg.eval, sets=["permuted"]))
    sets = build_evalsets(
        cfg.data,
        cfg.eval,
        cfg.variants.names,
        data,
        pipeline.run_dir / "cache",
        "cpu",
        False,
        seed=cfg.seed,
    )
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


# --- how each builder reaches its images (fast; the loaders are wrapped, not replaced) -----


def test_builtin_sets_and_their_registration(ctx) -> None:
    from mistrust.data import evalsets

    assert evalsets.evalset_names()[:8] == [
        "original",
        "permuted",
        "scaled",
        "unnormalized",
        "noise",
        "noise-gaussian",
        "held-out",
        "gan",
    ]
    assert evalsets.evalset_names()[8:] == list(evalsets.DATASET_SETS)
    assert evalsets.describe("noise") == "uniform random pixels"
    assert evalsets.describe("my-photos") == "images from a user folder"

    def mine(c: EvalContext):
        return build_evalset("unnormalized", c)

    try:
        assert evalsets.register_evalset("mine", "my set")(mine) is mine
        assert evalsets.describe("mine") == "my set" and evalsets.evalset_names()[-1] == "mine"
        torch.testing.assert_close(build_evalset("mine", ctx).x, ctx.nonmembers.images / 255.0)
        with pytest.raises(ValueError, match=r"^evaluation set 'mine' is already registered$"):
            evalsets.register_evalset("mine", "again")(mine)
        assert evalsets.describe("mine") == "my set"
    finally:
        evalsets._BUILDERS.pop("mine", None)


def test_held_out_without_images_is_an_error(ctx) -> None:
    from dataclasses import replace

    empty = ImageSet(torch.zeros((0, 3, 5, 5), dtype=torch.uint8), torch.zeros(0))
    one = ImageSet(ctx.held_out.images[:1], torch.full((1,), 7))
    message = r"^eval set 'held-out' needs data.held_out_classes to name classes$"
    for held in (None, empty):
        with pytest.raises(ValueError, match=message):
            build_evalset("held-out", replace(ctx, held_out=held))
    torch.testing.assert_close(
        build_evalset("held-out", replace(ctx, held_out=one)).x, normalised(one.images)
    )


def test_folder_set_decodes_only_a_seeded_sample(ctx, tmp_path: Path, monkeypatch) -> None:
    """A capped folder set asks the folder loader for ``eval.size`` images, seeded by the
    run's seed, at the target's size and channels with the run's ``fit`` (so a huge folder
    is never decoded whole); a set in ``eval.full_sets`` asks for every image."""
    from dataclasses import replace

    from PIL import Image

    import mistrust.data.folders as folders

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((7, 5, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    calls = []
    real = folders.load_folder

    def spy(path, **kwargs):  # noqa: ANN001, ANN003
        calls.append((path, kwargs))
        return real(path, **kwargs)

    monkeypatch.setattr(folders, "load_folder", spy)
    mine = replace(ctx, size=2, fit="center-crop", folders={"mine": str(folder)})
    s = build_evalset("mine", mine)
    assert calls == [
        (
            str(folder),
            {
                "size": 5,
                "channels": 3,
                "name": "mine",
                "limit": 2,
                "seed": 11,
                "fit": "center-crop",
            },
        )
    ]
    assert len(s.x) == 2 and (s.labels == -1).all()
    full = build_evalset("mine", replace(mine, full_sets=("mine",)))
    assert calls[-1][1]["limit"] is None and len(full.x) == 4
    shades = sorted(float(x.float().mean()) for x in full.display)  # every image, once
    assert shades == pytest.approx([0.0, 40.0, 80.0, 120.0])


def _recording_loader(monkeypatch, images: dict[str, torch.Tensor]) -> list:
    import mistrust.data.sources as sources

    calls = []

    def fake(name, **kwargs):  # noqa: ANN001, ANN003
        calls.append((name, kwargs))
        return ImageSet(images[name], torch.zeros(len(images[name]), dtype=torch.long))

    monkeypatch.setattr(sources, "load_source", fake)
    return calls


def test_other_datasets_are_loaded_at_the_targets_size_from_the_documented_split(
    ctx, monkeypatch
) -> None:
    from dataclasses import replace

    g = torch.Generator().manual_seed(5)
    cats = torch.randint(0, 256, (3, 3, 5, 5), generator=g, dtype=torch.uint8)
    wild = torch.randint(0, 256, (2, 3, 5, 5), generator=g, dtype=torch.uint8)
    calls = _recording_loader(monkeypatch, {"afhq-cat": cats, "afhq-wild": wild, "svhn": wild})
    c = replace(ctx, root="/data", download=True, ood_split="train", fit="center-crop")
    want = {"split": "train", "root": "/data", "download": True, "size": 5, "channels": 3}
    want["fit"] = "center-crop"

    s = build_evalset("afhq-nondog", c)  # every cat, then every wild animal
    assert calls == [("afhq-cat", want), ("afhq-wild", want)]
    torch.testing.assert_close(s.x, normalised(torch.cat([cats, wild])))
    assert torch.equal(s.display, torch.cat([cats, wild])) and (s.labels == -1).all()
    assert len(build_evalset("afhq-nondog", replace(c, size=4)).x) == 4

    s = build_evalset("svhn", replace(c, ood_split="test"))
    assert calls[-1] == ("svhn", {**want, "split": "test"})
    torch.testing.assert_close(s.x, normalised(wild))
    assert (s.labels == -1).all()


def test_stand_in_datasets_are_synthetic_at_the_targets_size(ctx, monkeypatch) -> None:
    """With ``data.stand_in`` another dataset is the stand-in generator's test images at the
    target's resolution and count (nothing is read from disk), seeded apart from the run's
    own stand-in data (seed + 7), so the set never repeats the target's test images."""
    from dataclasses import replace

    from mistrust.data.standin import stand_in_set

    calls = _recording_loader(monkeypatch, {})
    c = replace(ctx, stand_in=True, size=4)
    s = build_evalset("cifar100", c)
    assert calls == []
    want = stand_in_set(get_source("cifar100"), n=4, split="test", size=5, seed=11 + 7)
    assert torch.equal(s.display, want.images)
    torch.testing.assert_close(s.x, normalised(want.images))
    assert (s.labels == -1).all()
    own = stand_in_set(get_source("cifar100"), n=4, split="test", size=5, seed=11)
    assert not torch.equal(s.display, own.images)


def test_stand_in_sets_of_datasets_used_whole(ctx, monkeypatch) -> None:
    """Under ``data.stand_in`` a dataset's stand-in holds ``eval.size`` images, so a set in
    ``eval.full_sets`` is every stand-in of its datasets: AFHQ dogs 4 images, AFHQ-NonDogs
    the cats' 4 (the afhq-cat set's images) then 4 wild animals seeded apart (seed + 8),
    sampled down to 4 when not used whole. Nothing is read from disk."""
    from dataclasses import replace

    from mistrust.data.standin import stand_in_set

    calls = _recording_loader(monkeypatch, {})
    c = replace(ctx, stand_in=True, size=4)
    whole = replace(c, full_sets=("afhq-dog", "afhq-nondog"))
    cats = stand_in_set(get_source("afhq-cat"), n=4, split="test", size=5, seed=11 + 7)
    wild = stand_in_set(get_source("afhq-wild"), n=4, split="test", size=5, seed=11 + 8)
    assert len(build_evalset("afhq-dog", whole).x) == 4
    nondog = build_evalset("afhq-nondog", whole)
    assert torch.equal(nondog.display, torch.cat([cats.images, wild.images]))
    assert (nondog.labels == -1).all()
    assert torch.equal(build_evalset("afhq-cat", c).display, cats.images)
    sampled = build_evalset("afhq-nondog", c).display
    assert len(sampled) == 4 and len({bytes(x.flatten().tolist()) for x in sampled}) == 4
    assert calls == []


def test_gan_set_samples_a_generator_trained_on_the_gan_images(ctx, monkeypatch) -> None:
    """The fake set: a GAN trained on ``gan_data`` (never the target's training images; the
    run's choice of them is tested in test_run_protocol.py), cached under ``cache_dir/gan``
    with the run's epochs, seed and device, then ``eval.size`` fakes at the images' size."""
    from dataclasses import replace

    import mistrust.data.gan as gan

    calls = {}
    fakes = torch.randint(0, 256, (3, 3, 5, 5), generator=torch.Generator().manual_seed(2))
    fakes = fakes.to(torch.uint8)

    def train(images, **kwargs):  # noqa: ANN001, ANN003
        calls["train"] = (images, kwargs)
        return "generator"

    def sample(generator, n, **kwargs):  # noqa: ANN001, ANN003
        calls["sample"] = (generator, n, kwargs)
        return fakes[:n]

    monkeypatch.setattr(gan, "load_or_train_gan", train)
    monkeypatch.setattr(gan, "sample_gan", sample)
    c = replace(ctx, size=3, gan_epochs=4, device="meta", progress=True)
    s = build_evalset("gan", c)
    images, kwargs = calls["train"]
    assert images is c.gan_data.images
    assert kwargs == {
        "labels": c.gan_data.labels,
        "cache_dir": c.cache_dir / "gan",
        "epochs": 4,
        "seed": 11,
        "device": "meta",
        "progress": True,
    }
    assert calls["sample"] == ("generator", 3, {"seed": 11, "size": 5})
    torch.testing.assert_close(s.x, normalised(fakes))
    assert torch.equal(s.display, fakes) and (s.labels == -1).all() and s.note == ""


def test_only_datasets_and_folders_have_a_full_size(ctx, monkeypatch) -> None:
    """``eval.full_sets`` takes every image of a dataset (here 9 > ``eval.size``) or of a
    folder; any other set named there is an error, also when the run has folder sets."""
    from dataclasses import replace

    many = torch.randint(0, 256, (9, 3, 5, 5), generator=torch.Generator().manual_seed(4))
    _recording_loader(monkeypatch, {"svhn": many.to(torch.uint8)})
    assert len(build_evalset("svhn", ctx).x) == ctx.size == 6
    full = build_evalset("svhn", replace(ctx, full_sets=("svhn",)))
    assert torch.equal(full.display, many.to(torch.uint8))
    message = r"^evaluation set 'noise' has no full size; only datasets have$"
    for folders in (None, {"mine": "/nowhere"}):
        with pytest.raises(ValueError, match=message):
            build_evalset("noise", replace(ctx, full_sets=("noise",), folders=folders))


def test_unknown_set_names_the_choices(ctx) -> None:
    from mistrust.data.evalsets import evalset_names

    with pytest.raises(ValueError) as err:
        build_evalset("no-such-set", ctx)
    choices = ", ".join(evalset_names())
    assert str(err.value) == f"unknown evaluation set 'no-such-set'; choose from {choices}"


@pytest.mark.parametrize("name", ["original", "scaled", "noise", "held-out"])
def test_gallery_images_are_uint8(ctx, name: str) -> None:
    assert build_evalset(name, ctx).display.dtype == torch.uint8


def test_gan_is_cached_asks_for_the_generators_cache_file(ctx, monkeypatch) -> None:
    """``gan_is_cached`` looks for the file the generator of these images, labels, epochs
    and seed is cached in: the arguments :func:`gan_generator` trains it with."""
    from dataclasses import replace

    import mistrust.data.gan as gan
    from mistrust.data.evalsets import gan_generator, gan_is_cached

    calls = []
    monkeypatch.setattr(gan, "load_or_train_gan", lambda images, **kw: calls.append(kw))
    c = replace(ctx, gan_epochs=3, seed=5)
    gan_generator(c)
    trained = {k: v for k, v in calls[0].items() if k not in ("device", "progress")}
    path = gan.gan_cache_path(c.gan_data.images, **trained)
    assert path.parent == c.cache_dir / "gan" and not path.exists()
    assert not gan_is_cached(c)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    try:
        assert gan_is_cached(c)
        assert not gan_is_cached(replace(c, seed=6)) and not gan_is_cached(replace(c, gan_epochs=2))
    finally:
        path.unlink()


def test_set_sizes_as_the_plan_counts_them() -> None:
    """``evalset_size`` by hand: copies of the non-members, drawn sets capped at the size
    unless used whole, folders, held-out classes, stand-ins and sets made here."""
    from mistrust.data.evalsets import SetCounts, evalset_size

    pools = {"cifar100": 7, "svhn": 40, "afhq-cat": 3, "afhq-wild": 5}
    counts = SetCounts(
        size=10,
        nonmembers=25,
        held_out=6,
        pool=lambda src: pools[src],
        folders={"mine": 12, "few": 4},
        full_sets=("svhn", "mine", "afhq-nondog"),
    )
    want = {
        "original": 25,
        "permuted": 25,
        "scaled": 25,
        "unnormalized": 25,
        "held-out": 6,  # fewer than the size: all of them
        "cifar100": 7,  # a pool smaller than the size
        "svhn": 40,  # used whole
        "afhq-cat": 3,
        "afhq-nondog": 8,  # cats then wild animals, used whole
        "mine": 12,  # a folder used whole
        "few": 4,
        "noise": 10,  # made here
        "gan": 10,
    }
    assert {name: evalset_size(name, counts) for name in want} == want
    sampled = SetCounts(size=5, nonmembers=25, held_out=9, pool=lambda src: pools[src])
    assert [evalset_size(n, sampled) for n in ("held-out", "svhn", "afhq-nondog")] == [5, 5, 5]
    # stand-in data: every dataset is `size` images, so a set used whole is size x datasets
    stand_in = SetCounts(
        size=10, nonmembers=25, held_out=6, pool=lambda src: 1 / 0, full_sets=("afhq-nondog",)
    )
    stand_in.stand_in = True
    assert evalset_size("afhq-nondog", stand_in) == 20
    assert evalset_size("svhn", stand_in) == 10
