"""Executors: local and Ray give the same results, tiny reference training included."""

from __future__ import annotations

import math
import operator
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mistrust.config import Config, DataConfig, ModelConfig, TrainConfig
from mistrust.data.images import Preprocess
from mistrust.executors import run_tasks
from mistrust.io import load_npz
from mistrust.reference import ReferenceJob, train_reference_model


def _offset_pow(shared: int, item: int) -> int:
    return shared + item**2


def test_local_keeps_order_and_passes_shared() -> None:
    assert run_tasks(math.factorial, [5, 3, 4]) == [120, 6, 24]
    assert run_tasks(_offset_pow, [1, 2, 3], shared=10, progress=True, desc="t") == [11, 14, 19]


def test_unknown_executor() -> None:
    with pytest.raises(ValueError, match="unknown executor 'dask'"):
        run_tasks(math.factorial, [1], executor="dask")


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'mistrust\[ray\]'"):
        run_tasks(math.factorial, [1], executor="ray")


def _job(run_dir: Path) -> tuple[ReferenceJob, list]:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(48) % 3
    images = torch.rand(48, 1, 8, 8, generator=g) * 100 + labels.view(-1, 1, 1, 1) * 70
    cfg = Config(
        data=DataConfig(dataset="digits", train_size=32),
        model=ModelConfig(arch="mlp", width=16),
        train=TrainConfig(epochs=1, batch_size=16, lr=0.01),
    )
    ood = torch.randn(10, 1, 8, 8, generator=g)
    job = ReferenceJob(
        cfg,
        cfg.train,
        str(run_dir),
        Preprocess(1, 8, (0.5,), (0.25,)),
        3,
        images.to(torch.uint8),
        labels,
        {"noise": (ood, torch.full((10,), -1))},
        flip=True,
        device="cpu",
        progress=False,
    )
    tasks = [(i, np.sort(np.random.default_rng(i).permutation(48)[:32]), f"d{i}") for i in range(2)]
    return job, tasks


def _files(run_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for path in sorted((run_dir / "outputs" / "reference").rglob("*.npz")):
        out[str(path.relative_to(run_dir))] = load_npz(path)
    for i in range(2):
        state = torch.load(run_dir / "models" / "reference" / f"{i}.pt", weights_only=True)
        out[f"model{i}"] = {k: v.numpy() for k, v in state["state_dict"].items()}
    return out


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="ray not installed (pip install 'mistrust[ray]')")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_equals_local(ray_instance, tmp_path: Path) -> None:
    # functions must be importable by the workers (this test module is not): use the stdlib
    assert (
        run_tasks(operator.sub, [3, 1, 2], shared=5, executor="ray", progress=True)
        == run_tasks(operator.sub, [3, 1, 2], shared=5)
        == [2, 4, 3]
    )
    assert run_tasks(math.factorial, [4, 2], executor="ray") == [24, 2]
    assert ray_instance.is_initialized(), "an instance run_tasks did not start stays up"

    local_job, tasks = _job(tmp_path / "local")
    ray_job, _ = _job(tmp_path / "ray")
    run_tasks(train_reference_model, tasks, shared=local_job)
    remote = run_tasks(train_reference_model, tasks, shared=ray_job, executor="ray")
    assert [m["index"] for m in remote] == [0, 1] and all(m["trained"] for m in remote)
    a, b = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert a.keys() == b.keys()
    assert "outputs/reference/0/noise-flip.npz" in a and "outputs/reference/1/population.npz" in a
    for name in a:  # not bitwise: Ray workers run torch with 1 thread, this process with more
        for key in a[name]:
            np.testing.assert_allclose(
                a[name][key], b[name][key], rtol=1e-5, atol=1e-6, err_msg=f"{name}:{key}"
            )
    # a second run reuses the models
    again = run_tasks(train_reference_model, tasks, shared=ray_job, executor="ray")
    assert not any(m["trained"] for m in again)
