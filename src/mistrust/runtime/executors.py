"""Run independent tasks in process (``local``) or on a Ray cluster (``ray``).

One call, one list of results in input order, whatever the executor::

    results = run_tasks(train_one, items, shared=job, executor="ray")

``fn`` must be a module-level function (Ray pickles it by reference) and is
called as ``fn(item)``, or ``fn(shared, item)`` when ``shared`` is given.
``shared`` is the bulky input every task needs (tensors, configs): with Ray it
is put into the object store once instead of being shipped with every task.
Tasks communicate through their return values and through files in a
directory every worker can reach (a shared filesystem on a cluster).

``threads`` makes every task run torch with that many threads (Ray starts its
workers with one): float reductions then add up in the same order as in this
process, so a Ray run gives the same bytes as a local one on the same kind of CPU.

``workers`` runs local tasks in that many forked processes at once (each with
``threads`` torch threads). Small convnets use two cores better as two 1-thread
trainings than as one 2-thread training (BENCHMARKS.md), and since every task
runs with the same thread count, the bytes do not depend on ``workers``.
``inherit`` names modules to import here before forking, which every worker then
inherits instead of importing on its own.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mistrust.runtime.devices import EXECUTORS

log = logging.getLogger(__name__)

__all__ = ["EXECUTORS", "Background", "free_cores", "import_before_fork", "run_calls", "run_tasks"]

_NO_SHARED = object()


def _call(
    fn: Callable[..., Any], has_shared: bool, shared: Any, item: Any, threads: int | None = None
) -> Any:
    if threads:
        import torch

        torch.set_num_threads(threads)
    return fn(shared, item) if has_shared else fn(item)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError(
            "executor 'ray' needs Ray: pip install 'mistrust[ray]' (or pip install 'ray>=2.9')"
        ) from None
    return ray


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _free_cpus() -> int:
    """Usable cores not held by a running :class:`Background` task (at least one)."""
    return max(1, usable_cpus() - _BUSY[0])


@contextmanager
def free_cores() -> Iterator[int]:
    """Run the block with as many torch, BLAS and OpenMP threads as there are usable cores
    not held by a running :class:`Background` task (at least one); yields that number.

    A 2-thread step beside a 1-thread background task on 2 cores waits for a descheduled
    thread at every parallel region: the blind baseline's logistic regressions took
    16 s beside the Laplace fits instead of 0.5 s.
    """
    import torch
    from threadpoolctl import threadpool_limits

    n = _free_cpus()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield n
    finally:
        torch.set_num_threads(before)


def training_resources(device: str, *, models: Sequence[Path] = ()) -> dict[str, Any]:
    """``run_tasks`` resources of a model-training task on ``device``.

    On a CPU: one torch thread per task and one task per usable core not held by a
    running :class:`Background` task (on 2 cores beside the GAN: one). A task's bytes
    then depend neither on the machine's core count nor on the executor, and two
    1-thread trainings of a small convnet beat one 2-thread training (BENCHMARKS.md);
    unless every one of the tasks' model files (``models``) is already there, to be
    reused, the workers inherit what building an optimiser imports. On CUDA: one GPU per task,
    tasks one after another here, with the driver's threads.
    """
    import torch

    from mistrust.training import OPTIMIZER_IMPORTS

    if torch.device(device).type == "cuda":
        return {"gpus_per_task": 1.0, "threads": torch.get_num_threads(), "workers": 1}
    # a running Background task holds a core of its own
    return {
        "gpus_per_task": 0.0,
        "threads": 1,
        "workers": _free_cpus(),
        # a model file that is there is most likely reused (its fingerprint decides, in the task)
        "inherit": () if models and all(p.is_file() for p in models) else OPTIMIZER_IMPORTS,
    }


def run_tasks(
    fn: Callable[..., Any],
    items: Sequence[Any],
    *,
    shared: Any = _NO_SHARED,
    executor: str = "local",
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_task: float = 1.0,
    gpus_per_task: float = 0.0,
    threads: int | None = None,
    workers: int = 1,
    inherit: Sequence[str] = (),
    progress: bool = False,
    desc: str = "",
) -> list[Any]:
    """Apply ``fn`` to every item; results in the order of ``items``.

    Args:
        fn: module-level function ``fn(item)`` or ``fn(shared, item)``.
        items: one entry per task (picklable for Ray).
        shared: passed to every call as the first argument (omit for ``fn(item)``).
        executor: ``"local"`` (a loop in this process) or ``"ray"``.
        address: Ray cluster address (``"auto"``, ``"ray://host:10001"``); None starts a
            local Ray instance unless one is already initialised in this process.
        num_cpus: CPUs of a Ray instance started here (None: all).
        cpus_per_task, gpus_per_task: Ray resources each task reserves (with ``threads``
            set, a CPU task reserves that many CPUs, at most a whole Ray node's worth).
        threads: torch threads of every task (None: leave the worker's setting).
        workers: local only: run up to this many tasks at once, in forked processes
            (1: a loop in this process). Ray spreads tasks by ``cpus_per_task`` instead.
        inherit: forked workers only: modules imported in this process before the fork
            (:func:`import_before_fork`).
        progress: a progress bar over finished tasks (tqdm).
        desc: the bar's label.

    A Ray instance started by this call is shut down before it returns; one
    that was already initialised is left running.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    items = list(items)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc=desc or "tasks", unit="task")
    try:
        if executor == "local" and workers > 1 and len(items) > 1:
            import_before_fork(inherit)
            return _run_forked(fn, items, shared, min(workers, len(items)), threads, bar)
        if executor == "local":
            return _run_here(fn, items, shared, threads, bar)
        return _run_ray(
            fn, items, shared, address, num_cpus, cpus_per_task, gpus_per_task, threads, bar
        )
    finally:
        if bar is not None:
            bar.close()


def import_before_fork(modules: Sequence[str]) -> None:
    """Import ``modules`` here, where forking is possible, so that the processes forked
    next inherit them. A module a worker would import anyway is otherwise imported once per
    worker: ``torch._dynamo``, which every torch optimiser imports when first built, took
    1.2-2 s in each training worker and in the calibration process (BENCHMARKS.md)."""
    if _can_fork():
        for name in modules:
            importlib.import_module(name)


def _call_one(calls: Sequence[Callable[[], Any]], i: int) -> Any:
    return calls[i]()


def run_calls(calls: Sequence[Callable[[], Any]], *, inherit: Sequence[str] = ()) -> list[Any]:
    """The value of every zero-argument call, in order, from forked processes: one per
    usable core not held by a :class:`Background` task, with one torch thread each.

    For independent single-core work such as drawing figures (matplotlib draws on one
    core). The calls are inherited through the fork, so they may be closures; their
    values come back pickled. ``inherit``: as in :func:`run_tasks`.
    """
    return run_tasks(
        _call_one,
        range(len(calls)),
        shared=list(calls),
        threads=1,
        workers=_free_cpus(),
        inherit=inherit,
    )


def _run_here(
    fn: Callable[..., Any], items: list[Any], shared: Any, threads: int | None, bar: Any
) -> list[Any]:
    """One task after another in this process, which gets its thread count back after."""
    import torch

    before = torch.get_num_threads()
    try:
        out = []
        for item in items:
            out.append(_call(fn, shared is not _NO_SHARED, shared, item, threads))
            if bar is not None:
                bar.update(1)
        return out
    finally:
        torch.set_num_threads(before)


def _can_fork() -> bool:
    """Fork only on Linux: macOS lists it but system frameworks are not fork-safe there."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


# what a forked worker calls with: set in the parent just before the fork, so the
# (bulky, read-only) shared input is inherited rather than pickled to every worker
_FORK_STATE: tuple[Callable[..., Any], bool, Any, int | None] | None = None


def _die_with_parent(parent: int) -> None:
    """Linux: have a forked worker killed when the process that started it dies, even by
    SIGKILL, so that a killed run leaves no worker writing into its directory."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker ends with its task
        return
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


def _forked_init(parent: int) -> None:
    _die_with_parent(parent)
    if _FORK_STATE is not None and _FORK_STATE[3]:
        import torch

        # before any parallel region: a forked OpenMP pool is not usable in the child
        torch.set_num_threads(_FORK_STATE[3])
        from threadpoolctl import threadpool_limits

        # NumPy's and SciPy's BLAS too: one core per worker, whatever the library
        threadpool_limits(_FORK_STATE[3])


def _forked_call(item: Any) -> Any:
    assert _FORK_STATE is not None, "called outside a run_tasks worker"
    fn, has_shared, shared, threads = _FORK_STATE
    return _call(fn, has_shared, shared, item, threads)


def _run_forked(
    fn: Callable[..., Any],
    items: list[Any],
    shared: Any,
    workers: int,
    threads: int | None,
    bar: Any,
) -> list[Any]:
    """``items`` over ``workers`` forked processes; results in input order.

    Forking keeps the start cheap (no re-import of torch, no copy of ``shared``) and
    is what PyTorch's own data-loader workers do; where there is no fork, tasks run
    in this process one after another.
    """
    global _FORK_STATE
    if not _can_fork():
        return _run_here(fn, items, shared, threads, bar)
    _FORK_STATE = (fn, shared is not _NO_SHARED, shared, threads)
    try:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_forked_init,
            initargs=(os.getpid(),),
        ) as pool:
            futures = [pool.submit(_forked_call, item) for item in items]
            for _ in as_completed(futures):
                if bar is not None:
                    bar.update(1)
            return [f.result() for f in futures]
    finally:
        _FORK_STATE = None


def _background_main(
    send: Any, parent: int, fn: Callable[..., Any], item: Any, threads: int | None
) -> None:
    _die_with_parent(parent)
    try:
        send.send((True, _call(fn, False, None, item, threads)))
    except BaseException as exc:  # handed to result() in the parent
        send.send((False, exc))


_BUSY = [0]  # Background tasks running now


class Background:
    """``fn(item)`` in a forked process that starts now, while this one goes on.

    ``result()`` waits for it and returns its value or raises its exception;
    ``cancel()`` stops it. Where there is no fork, or with ``here=True`` (a process that
    uses a GPU, which a forked child must not touch), ``fn(item)`` runs here, at once.
    ``threads`` and ``inherit``: as in :func:`run_tasks`. The value comes
    back pickled through a pipe after the process has ended: return plain values, not
    tensors (torch shares those through the sending process).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        item: Any,
        *,
        threads: int | None = None,
        here: bool = False,
        inherit: Sequence[str] = (),
    ) -> None:
        self._proc: Any = None
        self._holds = False
        if here or not _can_fork():
            self._value = _run_here(fn, [item], _NO_SHARED, threads, None)[0]
            return
        import_before_fork(inherit)
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_background_main, args=(send, os.getpid(), fn, item, threads)
        )
        self._proc.start()
        send.close()
        self._hold(True)

    def _hold(self, on: bool) -> None:
        if on != self._holds:
            _BUSY[0] += 1 if on else -1
            self._holds = on

    def result(self) -> Any:
        if self._proc is None:
            return self._value
        try:
            ok, value = self._recv.recv()
        except EOFError:
            self._proc.join()
            raise RuntimeError(f"background task died (exit code {self._proc.exitcode})") from None
        finally:
            self._hold(False)
        self._proc.join()
        if not ok:
            raise value
        return value

    def cancel(self) -> None:
        self._hold(False)
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()


def _run_ray(
    fn: Callable[..., Any],
    items: list[Any],
    shared: Any,
    address: str | None,
    num_cpus: int | None,
    cpus_per_task: float,
    gpus_per_task: float,
    threads: int | None,
    bar: Any,
) -> list[Any]:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "address": address,
            "ignore_reinit_error": True,
            "include_dashboard": False,
            "log_to_driver": False,
        }
        if address is None:
            kwargs["num_cpus"] = num_cpus
        log.info("starting Ray (%s)", address or "local instance")
        ray.init(**kwargs)
        started = True
    try:
        if threads and not gpus_per_task:
            # reserve the CPUs the threads use, but never more than a node has (or it never runs)
            node_cpus = max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes()), default=0)
            cpus_per_task = max(cpus_per_task, min(float(threads), node_cpus or 1.0))
        remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task)(_call)
        has_shared = shared is not _NO_SHARED
        # once in the object store, not once per task
        shared_ref = ray.put(shared if has_shared else None)
        refs = [remote.remote(fn, has_shared, shared_ref, item, threads) for item in items]
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            if bar is not None:
                bar.update(len(done))
        return ray.get(refs)
    finally:
        if started:
            ray.shutdown()
