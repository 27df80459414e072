"""The GAN of the fake set trains in a process of its own beside the model tasks: the run
writes the same bytes as one that trains the GAN first, and a failing task still fails."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mistrust.runtime.executors import Background

TINY = [
    "data.train_size=60",
    "data.test_size=60",
    "data.members=30",
    "data.nonmembers=30",
    "model.width=8",
    "train.epochs=1",
    "variants.names=[base, label-smoothing]",
    "attacks.names=[threshold]",
    "eval.sets=[original, scaled, gan]",
    "eval.gan_images=64",
    "eval.gan_epochs=2",
    "eval.gallery_size=2",
]


def _fail(item: int) -> int:
    raise KeyError(f"task {item}")


def _pid(item: int) -> tuple[int, int]:
    return item, os.getpid()


def test_background_returns_value_and_raises_its_error() -> None:
    from mistrust.runtime.executors import _can_fork

    item, pid = Background(_pid, 7).result()
    assert item == 7 and (pid != os.getpid()) == _can_fork()
    with pytest.raises(KeyError, match="task 3"):
        Background(_fail, 3).result()


@pytest.mark.trains
def test_gan_beside_models_gives_the_same_bytes(tmp_path: Path, monkeypatch) -> None:
    from mistrust.config import load_config
    from mistrust.study import run as experiment

    monkeypatch.setattr(
        "mistrust.present.report.build_report", lambda run_dir: run_dir / "report.html"
    )
    started = []
    real = experiment._gan_beside_models

    def spy(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    runs = {}
    for how in ("beside", "first"):
        # a cache of its own, so that each run trains its GAN
        monkeypatch.setenv("MISTRUST_CACHE", str(tmp_path / f"cache-{how}"))
        if how == "beside":
            monkeypatch.setattr(experiment, "_gan_beside_models", spy)
            # two CPUs, also where this process runs on one (a pytest-xdist worker)
            monkeypatch.setattr(experiment, "usable_cpus", lambda: 2)
        else:  # one CPU: the GAN trains while the sets are built, before the models
            monkeypatch.setattr(experiment, "usable_cpus", lambda: 1)
        runs[how] = tmp_path / how
        experiment.run_experiment(load_config("smoke", TINY), runs[how])
    if started[0] is None:
        pytest.skip("no fork here, or one CPU: the GAN trains before the models")
    beside, first = runs["beside"], runs["first"]
    assert (beside / "results.csv").read_bytes() == (first / "results.csv").read_bytes()
    gan = sorted(p.relative_to(beside) for p in beside.glob("outputs/*/*/gan.npz"))
    assert [str(p) for p in gan] == [
        "outputs/base/target/gan.npz",
        "outputs/label-smoothing/target/gan.npz",
    ]
    for rel in gan:
        a, b = np.load(beside / rel), np.load(first / rel)
        assert a.files == b.files
        for key in a.files:
            assert np.array_equal(a[key], b[key]), f"{rel}:{key}"
    cached = [sorted((tmp_path / f"cache-{h}" / "gan").iterdir()) for h in ("beside", "first")]
    assert [p.name for p in cached[0]] == [p.name for p in cached[1]] and len(cached[0]) == 1
    assert cached[0][0].read_bytes() == cached[1][0].read_bytes()  # the same generator


@pytest.mark.trains
def test_a_cached_gan_leaves_every_core_to_the_models(tmp_path: Path, monkeypatch) -> None:
    """Once the generator is cached, nothing trains beside the models, so their tasks get
    every core; the cache key is the one load_or_train_gan writes."""
    from mistrust.config import load_config
    from mistrust.data import evalsets
    from mistrust.study import run as experiment

    monkeypatch.setenv("MISTRUST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(
        "mistrust.present.report.build_report", lambda run_dir: run_dir / "report.html"
    )
    monkeypatch.setattr(experiment, "usable_cpus", lambda: 2)
    started, cached = [], []
    real, real_cached = experiment._gan_beside_models, evalsets.gan_is_cached

    def spy(*args, **kwargs):
        started.append(real(*args, **kwargs))
        return started[-1]

    def cached_spy(ctx):
        cached.append(real_cached(ctx))
        return cached[-1]

    monkeypatch.setattr(experiment, "_gan_beside_models", spy)
    monkeypatch.setattr(experiment, "gan_is_cached", cached_spy)
    experiment.run_experiment(load_config("smoke", TINY), tmp_path / "first")
    if started[0] is None:
        pytest.skip("no fork here: the GAN trains before the models")
    experiment.run_experiment(load_config("smoke", TINY), tmp_path / "second")
    assert cached == [False, True]  # the first run trained and cached it, the second found it
    assert started[1] is None
    first, second = (tmp_path / r / "results.csv" for r in ("first", "second"))
    assert first.read_bytes() == second.read_bytes()
