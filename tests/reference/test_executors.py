"""Executors: local and Ray give the same bytes, from one task to a whole study."""

from __future__ import annotations

import math
import operator
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mistrust.config import Config, DataConfig, ModelConfig, TrainConfig
from mistrust.data.images import Preprocess
from mistrust.io import load_npz
from mistrust.runtime.executors import run_tasks
from mistrust.runtime.paths import RunPaths
from mistrust.study.reference_models import ReferenceJob, train_reference_model


def _offset_pow(shared: int, item: int) -> int:
    return shared + item**2


def test_local_keeps_order_and_passes_shared() -> None:
    assert run_tasks(math.factorial, [5, 3, 4]) == [120, 6, 24]
    assert run_tasks(_offset_pow, [1, 2, 3], shared=10, progress=True, desc="t") == [11, 14, 19]


def _where(item: int) -> tuple[int, int, int]:
    return item, os.getpid(), torch.get_num_threads()


def test_local_workers_run_tasks_in_other_processes_with_set_threads() -> None:
    if not __import__("mistrust.runtime.executors").runtime.executors._can_fork():
        pytest.skip("no fork on this platform: tasks run in this process")
    out = run_tasks(_where, list(range(6)), workers=2, threads=1)
    assert [o[0] for o in out] == list(range(6))  # input order
    pids = {o[1] for o in out}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    assert {o[2] for o in out} == {1}
    assert run_tasks(_offset_pow, [1, 2, 3], shared=10, workers=2) == [11, 14, 19]


def test_local_workers_give_the_same_bytes_as_one_after_another(tmp_path: Path) -> None:
    """Two models trained at once in two 1-thread processes equal the same two trained
    one after another in this process (the same thread count, so the same float sums)."""
    seq_job, tasks = _job(tmp_path / "seq")
    par_job, _ = _job(tmp_path / "par")
    threads = torch.get_num_threads()
    try:
        run_tasks(train_reference_model, tasks, shared=seq_job, threads=1)
        metas = run_tasks(train_reference_model, tasks, shared=par_job, threads=1, workers=2)
    finally:
        torch.set_num_threads(threads)
    assert [m["index"] for m in metas] == [0, 1] and all(m["trained"] for m in metas)
    a, b = _files(tmp_path / "seq"), _files(tmp_path / "par")
    assert a.keys() == b.keys() and len(a) > 4
    for name in a:
        for key in a[name]:
            assert np.array_equal(a[name][key], b[name][key]), f"{name}:{key}"


def test_cpu_training_runs_one_thread_per_task_on_every_core(tmp_path: Path) -> None:
    from mistrust.runtime.executors import training_resources, usable_cpus
    from mistrust.training import OPTIMIZER_IMPORTS

    assert training_resources("cpu") == {
        "gpus_per_task": 0.0,
        "threads": 1,
        "workers": usable_cpus(),
        "inherit": OPTIMIZER_IMPORTS,  # what the first optimiser would import in each worker
    }
    saved = tmp_path / "m.pt"
    saved.write_bytes(b"")
    assert training_resources("cpu", models=[saved])["inherit"] == ()  # models only load
    assert training_resources("cpu", models=[saved, tmp_path / "new.pt"])["inherit"]
    assert usable_cpus() >= 1


def _imported(name: str) -> bool:
    return name in sys.modules


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers fork on Linux only")
def test_forked_workers_inherit_the_modules_named(tmp_path: Path, monkeypatch) -> None:
    from mistrust.runtime.executors import Background

    for name in ("mistrust_probe_a", "mistrust_probe_b"):
        (tmp_path / f"{name}.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ["mistrust_probe_a", "mistrust_probe_b"]
    assert run_tasks(_imported, names, workers=2) == [False, False]
    assert run_tasks(_imported, names, workers=2, inherit=names[:1]) == [True, False]
    assert Background(_imported, names[1], inherit=names[1:]).result() is True
    for name in names:
        monkeypatch.delitem(sys.modules, name)


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
        cfg.data,
        cfg.model,
        cfg.train,
        cfg.seed,
        RunPaths(run_dir),
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
    threads = torch.get_num_threads()
    run_tasks(train_reference_model, tasks, shared=local_job)
    remote = run_tasks(
        train_reference_model, tasks, shared=ray_job, executor="ray", threads=threads
    )
    assert [m["index"] for m in remote] == [0, 1] and all(m["trained"] for m in remote)
    a, b = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert a.keys() == b.keys()
    assert "outputs/reference/0/noise-flip.npz" in a and "outputs/reference/1/population.npz" in a
    for name in a:  # bitwise: the Ray tasks run torch with this process's thread count
        for key in a[name]:
            assert np.array_equal(a[name][key], b[name][key]), f"{name}:{key}"
    # a second run reuses the models
    again = run_tasks(train_reference_model, tasks, shared=ray_job, executor="ray")
    assert not any(m["trained"] for m in again)


def test_study_on_ray_equals_local(ray_instance, tmp_path: Path, monkeypatch) -> None:
    """Target, shadow, every training-time variant and the reference models as Ray tasks:
    the same files and results.csv, byte for byte, as the same study run locally."""
    from mistrust.config import load_config
    from mistrust.study.run import run_experiment

    monkeypatch.setattr(
        "mistrust.present.report.build_report", lambda run_dir: run_dir / "report.html"
    )
    overrides = [
        "data.image_size=8",
        "data.train_size=60",
        "data.test_size=60",
        "data.members=30",
        "data.nonmembers=30",
        "model.arch=mlp",
        "model.width=16",
        "train.epochs=2",
        "variants.names=[base, label-smoothing, weight-decay, temperature]",
        "attacks.names=[threshold, loss]",
        "eval.sets=[original, scaled, noise]",
        "eval.gallery_size=2",
        "reference.attacks=[lira-offline]",
        "reference.n_models=2",
        "reference.z_size=10",
    ]
    runs = {}
    for executor in ("local", "ray"):
        cfg = load_config("smoke", [*overrides, f"executor={executor}"])
        runs[executor] = tmp_path / executor
        run_experiment(cfg, runs[executor])
    local, ray = runs["local"], runs["ray"]
    models = sorted(str(p.relative_to(local / "models")) for p in local.glob("models/*/*.pt"))
    assert models == [
        "base/shadow.pt",
        "base/target.pt",
        "label-smoothing/shadow.pt",
        "label-smoothing/target.pt",
        "reference/0.pt",
        "reference/1.pt",
        "weight-decay/shadow.pt",
        "weight-decay/target.pt",
    ]
    for rel in models:
        a = torch.load(local / "models" / rel, weights_only=True)["state_dict"]
        b = torch.load(ray / "models" / rel, weights_only=True)["state_dict"]
        assert all(torch.equal(a[k], b[k]) for k in a), rel
    outputs = sorted(p.relative_to(local) for p in local.rglob("outputs/**/*.npz"))
    assert len(outputs) > 20
    for rel in outputs:
        a, b = load_npz(local / rel), load_npz(ray / rel)
        assert a.keys() == b.keys(), rel
        for key in a:
            assert np.array_equal(a[key], b[key]), f"{rel}:{key}"
    assert (local / "results.csv").read_bytes() == (ray / "results.csv").read_bytes()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_a_killed_run() -> None:
    """A run killed by SIGKILL leaves no worker behind to write into its directory."""
    import signal
    import subprocess
    import time

    code = "import time; from mistrust.runtime.executors import run_tasks; run_tasks(time.sleep, [60, 60], workers=2)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    children: list[int] = []
    children_file = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 120
    while len(children) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        if children_file.exists():
            children = [int(c) for c in children_file.read_text().split()]
    assert len(children) >= 2, "the workers did not start"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 30
    while any(alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(c) for c in children)


def test_a_background_task_holds_a_core() -> None:
    import time

    from mistrust.runtime.executors import Background, training_resources, usable_cpus

    if not __import__("mistrust.runtime.executors").runtime.executors._can_fork():
        pytest.skip("no fork on this platform: a background task runs at once, here")
    bg = Background(time.sleep, 0.2)
    assert training_resources("cpu")["workers"] == max(1, usable_cpus() - 1)
    bg.result()
    assert training_resources("cpu")["workers"] == usable_cpus()
    bg = Background(time.sleep, 5)
    bg.cancel()
    assert training_resources("cpu")["workers"] == usable_cpus()


def _pid_and_threads(_: object) -> tuple[int, int]:
    return os.getpid(), torch.get_num_threads()


def test_background_here_runs_at_once_in_this_process_and_free_cores_counts_it() -> None:
    from mistrust.runtime.executors import Background, free_cores, run_calls, usable_cpus

    assert Background(_pid_and_threads, None, threads=1, here=True).result()[0] == os.getpid()
    if not __import__("mistrust.runtime.executors").runtime.executors._can_fork():
        pytest.skip("no fork on this platform")
    bg = Background(_pid_and_threads, None, threads=1)
    with free_cores() as n:  # the background task holds one core until its result is taken
        assert n == max(1, usable_cpus() - 1) and torch.get_num_threads() == n
    pid, threads = bg.result()
    assert pid != os.getpid() and threads == 1
    with free_cores() as n:
        assert n == usable_cpus()
    calls = [lambda i=i: (i, os.getpid()) for i in range(4)]  # closures: inherited, not pickled
    out = run_calls(calls)
    assert [i for i, _ in out] == [0, 1, 2, 3]
    assert usable_cpus() == 1 or os.getpid() not in {p for _, p in out}
