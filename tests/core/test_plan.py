"""The plan check: a whole run resolved before any training (``mistrust check``)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mistrust.calibration.variants import get_variant
from mistrust.cli import main
from mistrust.config import ConfigError, load_config, preset_names
from mistrust.errors import DataError
from mistrust.study.plan import check_plan

PAPER = [
    "paper-cifar10-efficientnet",
    "paper-cifar10-resnet18",
    "paper-cifar10-salemcnn",
    "paper-stanford-dogs-resnet50",
]


def _build_evalsets(cfg, cache: Path) -> dict:
    """The run's evaluation sets of ``cfg``, built as the run builds them."""
    from mistrust.study.data import build_evalsets, load_data

    data = load_data(cfg.data, seed=cfg.seed)
    return build_evalsets(
        cfg.data, cfg.eval, cfg.variants.names, data, cache, "cpu", False, seed=cfg.seed
    )


def _cli(capsys, *args: str) -> tuple[int, str, list[str]]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, [line for line in out.err.splitlines() if line.startswith("mistrust:")]


@pytest.mark.parametrize("preset", PAPER)
def test_paper_presets_check_at_full_size_on_stand_in_data(capsys, preset: str) -> None:
    t0 = time.perf_counter()
    code, out, errors = _cli(capsys, "check", "--preset", preset, "--set", "data.stand_in=true")
    seconds = time.perf_counter() - t0
    assert code == 0, errors
    cfg = load_config(preset)
    assert f"train {cfg.data.train_size} (attack members {cfg.data.members})" in out
    assert "plan ok" in out
    assert seconds < 120, seconds  # no training (hours at these sizes), no image generated


def test_smoke_plan_sizes_are_the_splits(capsys) -> None:
    plan = check_plan(load_config("smoke"))
    # digits: 898 train / 899 test images, split 200 | 200 per role; 100 + 100 of each test split
    assert plan.pools == (898, 899)
    assert len(plan.splits["target_train"]) == 200 and len(plan.splits["shadow_test"]) == 200
    assert len(plan.splits["target_calibration"]) == 100
    assert plan.trained == ["base", "label-smoothing"]
    assert plan.posthoc == ["temperature", "temperature-fit", "laplace"]
    sizes = {e.name: e.size for e in plan.eval_sets}
    assert sizes == {
        n: 100 for n in ("original", "permuted", "scaled", "unnormalized", "noise")
    } | {"gan": 100}


def test_pretrained_on_an_architecture_without_weights_is_one_line(capsys, tmp_path) -> None:
    code, _, errors = _cli(
        capsys, "run", "--preset", "smoke", "--set", "model.pretrained=true", "--out", str(tmp_path)
    )
    assert code == 2 and len(errors) == 1
    assert "model.pretrained: salem-cnn has no pretrained weights" in errors[0]
    assert not (tmp_path / "models").exists()


def test_run_checks_the_plan_before_training(capsys, tmp_path: Path) -> None:
    """temperature-fit needs held-out test data; test_size == nonmembers leaves none."""
    out = tmp_path / "run"
    code, _, errors = _cli(
        capsys,
        "run",
        "--preset",
        "smoke",
        "--quiet",
        "--out",
        str(out),
        "--set",
        "data.nonmembers=200",
        "--set",
        "variants.names=[base, temperature-fit]",
    )
    assert code == 2 and len(errors) == 1
    assert "variant temperature-fit fits on held-out test data" in errors[0]
    assert "data.test_size (200) equals data.nonmembers (200)" in errors[0]
    assert not out.exists()  # nothing was trained, not even the log written


def test_held_out_fix_when_the_test_pool_is_used_up() -> None:
    """digits: 899 test images, so each role's test split holds at most 449 (the Dogs case)."""
    cfg = load_config(
        "smoke",
        ["data.test_size=449", "data.nonmembers=449", "variants.names=[base, temperature-fit]"],
    )
    with pytest.raises(ConfigError) as err:
        check_plan(cfg)
    assert "lower data.nonmembers below data.test_size (the 899 test images allow " in str(
        err.value
    )
    assert "data.test_size at most 449)" in str(err.value)


def test_model_too_small_for_the_input_is_a_config_error() -> None:
    # SalemCNN: two padded 5x5 convolutions keep the size, two 2x2 pools halve it twice:
    # 2x2 -> 1x1 -> nothing left to pool
    with pytest.raises(ConfigError, match="salem-cnn cannot be built for 1x2x2"):
        check_plan(load_config("smoke", ["data.image_size=2"]))


def test_held_out_set_without_held_out_classes() -> None:
    with pytest.raises(ConfigError, match="'held-out' needs test images of classes left out"):
        check_plan(load_config("smoke", ["eval.sets=[original, held-out]"]))


def test_stand_in_pool_grows_with_held_out_classes() -> None:
    """The default preset holds out one of ten classes: the stand-in pool is sized for it."""
    plan = check_plan(load_config("default", ["data.stand_in=true"]))
    assert len(plan.splits["target_train"]) == 500 and plan.num_classes == 9
    assert len(plan.splits["held_out_test"]) > 0


def test_reference_population_is_checked() -> None:
    with pytest.raises(ConfigError, match="reference.population_size"):
        check_plan(load_config("reference", ["data.stand_in=true", "reference.population_size=1"]))


def test_laplace_rule_reads_the_validation_choice() -> None:
    laplace, fit = get_variant("laplace"), get_variant("temperature-fit")

    def settings(cal: str, method: str = "laplace-torch", prior: str = "grid") -> SimpleNamespace:
        return SimpleNamespace(calibration_set=cal, laplace_method=method, laplace_prior=prior)

    assert laplace.needs_held_out(load_config("smoke").variants)  # the default construction
    assert laplace.needs_held_out(settings("held-out", "paper"))
    assert not laplace.needs_held_out(settings("nonmembers", "paper"))  # the paper's presets
    assert not laplace.needs_held_out(settings("held-out", prior="marglik"))  # no validation
    assert fit.needs_held_out(settings("held-out"))
    assert not fit.needs_held_out(settings("nonmembers"))
    assert not get_variant("temperature").needs_held_out(settings("held-out"))


def _dogs_folder(root: Path, breeds: int, per_breed: int) -> None:
    for b in range(breeds):
        folder = root / "stanford-dogs" / "Images" / f"n0{b}-breed"
        folder.mkdir(parents=True)
        for i in range(per_breed):
            (folder / f"{i}.jpg").write_bytes(b"")  # listed, never decoded by the check


def test_folder_dataset_is_counted_from_its_listing(tmp_path: Path) -> None:
    """3 breeds x 10 files, 20 % test (stratified): 24 train and 6 test images, none decoded."""
    _dogs_folder(tmp_path, 3, 10)
    sizes = [
        "data.train_size=12",
        "data.test_size=3",
        "data.members=6",
        "data.nonmembers=2",
        "data.image_size=32",
        "model.pretrained=false",
        "eval.sets=[original]",
        "variants.names=[base]",
        f"data.root={tmp_path}",
    ]
    plan = check_plan(load_config("paper-stanford-dogs-resnet50", sizes))
    assert plan.pools == (24, 6) and plan.num_classes == 3
    assert plan.origin.endswith("stanford-dogs/Images")
    with pytest.raises(ConfigError, match=r"data.train_size \(13\) x 2 roles exceeds the 24"):
        check_plan(load_config("paper-stanford-dogs-resnet50", [*sizes, "data.train_size=13"]))


def test_missing_pretrained_weights(tmp_path: Path, caplog) -> None:
    """Real data: the missing weights file is the error. Stand-in data: random weights."""
    from mistrust.errors import WeightsError

    _dogs_folder(tmp_path, 3, 10)
    sizes = [
        "data.train_size=12",
        "data.test_size=3",
        "data.members=6",
        "data.nonmembers=2",
        "data.image_size=32",
        "eval.sets=[original]",
        "variants.names=[base]",
        f"model.weights_path={tmp_path / 'none.pth'}",
    ]
    with pytest.raises(WeightsError, match="none.pth"):
        check_plan(load_config("paper-stanford-dogs-resnet50", [*sizes, f"data.root={tmp_path}"]))
    plan = check_plan(load_config("paper-stanford-dogs-resnet50", [*sizes, "data.stand_in=true"]))
    # torchvision's ResNet-50 (25,557,032 with its 1000-class fc) with a head for the 40
    # classes that a stand-in train pool of 2 x 12 + 16 = 40 images holds
    assert plan.num_classes == 40
    assert plan.parameters == 25_557_032 - 2048 * 1000 - 1000 + 2048 * 40 + 40
    assert "training from random weights instead" in caplog.text


def test_pretrained_weights_of_another_architecture(tmp_path: Path) -> None:
    import torch
    import torchvision

    torch.save(torchvision.models.resnet50().state_dict(), tmp_path / "r50.pth")
    base = [
        "model.arch=resnet18",
        "model.width=null",
        "model.pretrained=true",
        "data.image_size=32",
    ]
    with pytest.raises(ConfigError, match="the pretrained weights do not fit resnet18"):
        check_plan(load_config("smoke", [*base, f"model.weights_path={tmp_path / 'r50.pth'}"]))
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    plan = check_plan(load_config("smoke", [*base, f"model.weights_path={tmp_path / 'r18.pth'}"]))
    assert "resnet18 (pretrained)" in plan.lines()[3]


def test_missing_evaluation_folder_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="afhq-cat not found"):
        check_plan(
            load_config(
                "smoke", ["eval.sets=[original, afhq-cat]", f"data.root={tmp_path}", "eval.size=5"]
            )
        )


def test_stand_in_other_datasets_are_planned_and_built(tmp_path: Path) -> None:
    """With data.stand_in every dataset evaluation set is a stand-in, in the plan and the run."""
    cfg = load_config("smoke", ["data.stand_in=true", "eval.sets=[original, afhq-cat, svhn]"])
    plan = check_plan(cfg)
    assert {e.name: (e.size, e.origin) for e in plan.eval_sets}["afhq-cat"] == (100, "stand-in")
    sets = _build_evalsets(cfg, tmp_path)
    assert sets["afhq-cat"].x.shape == (100, 1, 28, 28)  # drawn at the target's shape
    assert np.isfinite(sets["svhn"].x.numpy()).all()


#: tiny sizes for any preset; every preset keeps its own evaluation sets, eval.full_sets and
#: eval.ood_split, which are what this checks (GAN images are made at the target's size)
TINY_SIZES = [
    "data.stand_in=true",
    "data.stratified_pool=null",
    "data.train_size=24",
    "data.test_size=20",
    "data.members=12",
    "data.nonmembers=10",
    "data.image_size=16",
    "data.load_size=null",
    "eval.gan_epochs=1",
    "eval.gan_images=16",
    "reference.population_size=null",
    "reference.z_size=10",
]


def _built_sizes(cfg, tmp_path: Path, monkeypatch) -> dict[str, int]:
    """The run's data and evaluation-set stage (``study_data``), no model trained but the
    GAN's generator (one epoch); under stand-in data nothing may be read from disk."""
    import mistrust.data.sources as sources

    def from_disk(name: str, **_: object) -> None:
        raise AssertionError(f"the run read {name} from disk")

    if cfg.data.stand_in:
        monkeypatch.setattr(sources, "load_source", from_disk)
    sets = _build_evalsets(cfg, tmp_path)
    return {name: len(s.x) for name, s in sets.items()}


@pytest.mark.parametrize("preset", preset_names())
def test_plan_sizes_and_sources_every_set_as_the_run_builds_it(
    tmp_path: Path, monkeypatch, preset: str
) -> None:
    """What ``mistrust check`` reports for each evaluation set is what the run builds, for
    every preset on stand-in data: the same sets, each of the planned size, and every set of
    another dataset a stand-in (Stanford Dogs: AFHQ used whole, and AFHQ-NonDogs, cats and
    wild animals, two stand-ins of 10)."""
    from mistrust.data.evalsets import DATASET_SETS

    cfg = load_config(preset, TINY_SIZES)
    planned = {e.name: (e.size, e.origin) for e in check_plan(cfg).eval_sets}
    assert _built_sizes(cfg, tmp_path, monkeypatch) == {n: s for n, (s, _) in planned.items()}
    assert {n: o for n, (_, o) in planned.items() if n in DATASET_SETS} == dict.fromkeys(
        set(cfg.eval.sets) & set(DATASET_SETS), "stand-in"
    )
    if preset == "paper-stanford-dogs-resnet50":
        assert [planned[n][0] for n in ("afhq-dog", "afhq-cat", "afhq-wild")] == [10, 10, 10]
        assert planned["afhq-nondog"] == (20, "stand-in")


def test_plan_counts_the_split_the_run_draws_and_whole_sets(tmp_path: Path, monkeypatch) -> None:
    """Real data: another dataset is counted on ``eval.ood_split`` (digits: 898 train, 899
    test images), a set in ``eval.full_sets`` is counted whole, a folder set too."""
    from PIL import Image

    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (6, 6), 60 * i).save(folder / f"{i}.png")
    base = [
        "eval.size=5",
        "eval.sets=[original, digits, mine]",
        f"eval.folders={{mine: {folder}}}",
        "variants.names=[base]",
    ]
    for extra, want in [
        (["eval.ood_split=train"], {"digits": 5, "mine": 3}),
        (["eval.ood_split=train", "eval.full_sets=[digits]"], {"digits": 898, "mine": 3}),
        (["eval.ood_split=test", "eval.full_sets=[digits]"], {"digits": 899, "mine": 3}),
        (["eval.size=2", "eval.full_sets=[mine]"], {"digits": 2, "mine": 3}),
        (["eval.size=2"], {"digits": 2, "mine": 2}),
    ]:
        cfg = load_config("smoke", [*base, *extra])
        planned = {e.name: e.size for e in check_plan(cfg).eval_sets}
        assert planned == {"original": 100, **want}, extra
        assert _built_sizes(cfg, tmp_path, monkeypatch) == planned, extra


@pytest.mark.realdata
def test_fashion_mnist_is_an_evaluation_set(tmp_path: Path) -> None:
    """Registered as a dataset, so usable as a set of non-members too (Debian's copy)."""
    cfg = load_config("smoke", ["eval.sets=[original, fashion-mnist]"])
    planned = {e.name: e.size for e in check_plan(cfg).eval_sets}
    assert planned["fashion-mnist"] == 100
    sets = _build_evalsets(cfg, tmp_path)
    assert sets["fashion-mnist"].x.shape == (100, 1, 28, 28)


def _idx(path: Path, arr: np.ndarray) -> None:
    import gzip
    import struct

    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    path.write_bytes(gzip.compress(header + arr.tobytes()))


def test_idx_dataset_is_counted_from_labels_and_headers(tmp_path: Path) -> None:
    """MNIST-layout files: 50 train / 30 test labels; image counts read from the headers."""
    _idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((50, 28, 28)))
    _idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(50) % 10)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((30, 28, 28)))
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(30) % 10)
    sizes = [
        "data.dataset=mnist",
        f"data.root={tmp_path}",
        "data.download=false",
        "data.train_size=20",
        "data.test_size=15",
        "data.members=10",
        "data.nonmembers=10",
        "eval.sets=[original]",
    ]
    plan = check_plan(load_config("smoke", sizes))
    assert plan.pools == (50, 30) and plan.origin == str(tmp_path)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((31, 28, 28)))
    with pytest.raises(DataError, match="31 images but t10k-labels-idx1-ubyte.gz has 30 labels"):
        check_plan(load_config("smoke", sizes))
