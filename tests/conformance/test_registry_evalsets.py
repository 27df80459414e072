"""Conformance of every registered evaluation set (``data.evalsets``).

Each name of ``evalset_names()`` at collection time is built from a tiny context (six 8x8
non-members, four held-out images, stand-in data for other datasets, a one-epoch GAN) and
goes through the same contract: model-ready float inputs of the target's shape with a
label (or -1) and a uint8 image per row, a ``source`` only for copies of the non-members,
the same bytes for the same seed, exactly the size and an origin that ``mistrust check``
reports from the set's registration, and one clear error on bad input (a set without a
full size used whole; an origin that cannot be had). A set registered later is reported by
the plan by its own rules. The module takes a few seconds (the GAN's epoch).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mistrust.data import evalsets
from mistrust.data.evalsets import (
    DATASET_SETS,
    EvalContext,
    EvalInputs,
    SetCounts,
    build_evalset,
    evalset_names,
    evalset_origin,
    evalset_size,
)
from mistrust.data.images import ImageSet, Preprocess
from mistrust.errors import ConfigError

NAMES = evalset_names()
CH, SIZE, CLASSES = 1, 8, 3


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> EvalContext:
    g = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (6, CH, SIZE, SIZE), generator=g, dtype=torch.uint8)
    held = torch.randint(0, 256, (4, CH, SIZE, SIZE), generator=g, dtype=torch.uint8)
    gan = torch.randint(0, 256, (8, CH, SIZE, SIZE), generator=g, dtype=torch.uint8)
    return EvalContext(
        preprocess=Preprocess(CH, SIZE, (0.3,), (0.4,)),
        nonmembers=ImageSet(images, torch.arange(6) % CLASSES),
        held_out=ImageSet(held, torch.full((4,), CLASSES)),
        gan_data=ImageSet(gan, torch.arange(8) % CLASSES),
        size=5,
        seed=11,
        root=None,
        download=False,
        cache_dir=tmp_path_factory.mktemp("cache"),
        gan_epochs=1,
        stand_in=True,  # other datasets: synthetic, nothing read from disk
    )


def _counts(ctx: EvalContext) -> SetCounts:
    """What the plan counts for ``ctx``, without building anything."""
    return SetCounts(
        size=ctx.size,
        nonmembers=len(ctx.nonmembers),
        held_out=0 if ctx.held_out is None else len(ctx.held_out),
        pool=lambda source: pytest.fail(f"stand-in data: {source} is not counted"),
        full_sets=ctx.full_sets,
        stand_in=ctx.stand_in,
        gan_pool=len(ctx.gan_data),
        gan_images=len(ctx.gan_data),
        gan_epochs=ctx.gan_epochs,
    )


@pytest.fixture(scope="module")
def built(ctx) -> dict[str, EvalInputs]:
    return {name: build_evalset(name, ctx) for name in NAMES}


def test_the_built_in_sets_are_registered() -> None:
    assert NAMES[:4] == ["original", "permuted", "scaled", "unnormalized"]
    assert {"noise", "held-out", "gan", *DATASET_SETS} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_labels_and_gallery(name: str, built, ctx) -> None:
    s = built[name]
    n = len(s.x)
    assert n > 0 and s.x.shape == (n, CH, SIZE, SIZE) and s.x.dtype == torch.float32
    assert torch.isfinite(s.x).all()
    assert s.labels.shape == (n,) and s.labels.dtype == torch.int64
    assert ((s.labels == -1) | ((s.labels >= 0) & (s.labels < CLASSES))).all()
    assert len(s.display) == n and s.display.dtype == torch.uint8
    if s.source is not None:  # copies of the non-members: row i is non-member source[i]
        assert s.source.shape == (n,) and s.source.dtype == torch.int64
        assert ((s.source >= 0) & (s.source < len(ctx.nonmembers))).all()
        torch.testing.assert_close(s.labels, ctx.nonmembers.labels[s.source])


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes(name: str, built, ctx) -> None:
    again = build_evalset(name, ctx)
    assert built[name].x.numpy().tobytes() == again.x.numpy().tobytes()
    assert torch.equal(built[name].display, again.display)


@pytest.mark.parametrize("name", NAMES)
def test_the_plan_counts_what_is_built(name: str, built, ctx) -> None:
    counts = _counts(ctx)
    assert evalset_size(name, counts) == len(built[name].x)
    origin = evalset_origin(name, counts)
    assert isinstance(origin, str) and origin and "\n" not in origin


@pytest.mark.parametrize("name", NAMES)
def test_used_whole_as_the_plan_counts_it_or_one_clear_error(name: str, ctx) -> None:
    whole = dataclasses.replace(ctx, full_sets=(name,))
    if name in DATASET_SETS:
        assert len(build_evalset(name, whole).x) == evalset_size(name, _counts(whole))
        return
    with pytest.raises(ValueError, match=f"^evaluation set '{name}' has no full size"):
        build_evalset(name, whole)


@pytest.mark.parametrize("name", NAMES)
def test_an_origin_that_cannot_be_had_is_one_config_error(name: str, ctx) -> None:
    """With nothing to draw from (no held-out classes, no images for the GAN), the plan
    either still has the set or says in one line which key to change."""
    empty = dataclasses.replace(
        _counts(ctx), held_out=0, gan_pool=0, gan_images=0, nonmembers=0, size=0
    )
    try:
        origin = evalset_origin(name, empty)
    except ConfigError as err:
        assert str(err).startswith("eval.sets: ") and "\n" not in str(err)
    else:
        assert isinstance(origin, str) and origin


def test_unknown_names_are_one_clear_error(ctx) -> None:
    for call in (lambda: build_evalset("nope", ctx), lambda: evalset_origin("nope", _counts(ctx))):
        with pytest.raises(ValueError, match="^unknown evaluation set 'nope'; choose from"):
            call()


def test_a_set_registered_later_is_planned_by_its_own_rules(monkeypatch, ctx) -> None:
    """The plan asks the registry: a set registered with its size and origin rules is
    reported by them; one registered with neither is ``eval.size`` images built at run
    time."""
    from mistrust.config import load_config
    from mistrust.study.plan import check_plan

    monkeypatch.setattr(evalsets, "_BUILDERS", dict(evalsets._BUILDERS))  # unregistered after

    def twice(c: EvalContext) -> EvalInputs:
        s = build_evalset("original", c)
        return EvalInputs(torch.cat([s.x, s.x]), torch.cat([s.labels, s.labels]), s.display)

    evalsets.register_evalset(
        "doubled",
        "every non-member twice",
        size=lambda n: 2 * n.nonmembers,
        origin=lambda n: f"target non-members twice ({2 * n.nonmembers})",
    )(twice)
    evalsets.register_evalset("plain", "built at run time")(twice)
    assert len(build_evalset("doubled", ctx).x) == evalset_size("doubled", _counts(ctx)) == 12
    overrides = ["eval.sets=[original, doubled, plain]", "eval.size=7", "data.stand_in=true"]
    cfg = load_config("smoke", overrides)
    planned = {e.name: (e.size, e.origin) for e in check_plan(cfg).eval_sets}
    n = cfg.data.nonmembers
    assert planned["doubled"] == (2 * n, f"target non-members twice ({2 * n})")
    assert planned["plain"] == (7, "built at run time")
    assert planned["original"] == (n, "target non-members")
