from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before torch loads its OpenMP runtime (read once, at load): idle OpenMP threads sleep
# instead of spinning. Results do not change; on a shared 2-core machine a spinning thread
# steals the core its partner needs (a 2048 x 2048 eigendecomposition: 28 s spinning,
# 3.4 s sleeping, at load 14). The console runs the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _share_cores_between_workers() -> None:
    """Under pytest-xdist, give worker k of n every n-th core (one each when n equals the
    core count), before torch starts its threads. Runs find their cores through the
    affinity mask (``mistrust.runtime.executors.usable_cpus``) and the console runs a test starts
    inherit it, so two workers on two cores run two processes, not one per core each."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    mine = cores[int(worker[2:]) % count :: count] or cores
    if len(cores) >= count:
        os.sched_setaffinity(0, mine)


_share_cores_between_workers()

FASHION = Path("/usr/share/datasets/fashion-mnist")


def fashion_available() -> bool:
    roots = [Path(os.environ["MISTRUST_DATA"])] if os.environ.get("MISTRUST_DATA") else []
    return any((r / "train-images-idx3-ubyte.gz").is_file() for r in [*roots, FASHION])


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    # never touch the user's cache from tests; session-wide, so module- and session-scoped
    # runs use it too, and every run of the session shares one GAN cache
    # (pytest-xdist: one cache for all workers, in the parent of their base directories;
    # the cache writes its files atomically)
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MISTRUST_CACHE", str(base / "cache"))
        yield


def _shares_a_run(item: pytest.Item) -> bool:
    """Whether ``item`` reads a module- or session-scoped fixture of this folder (a shared
    run); pytest's own fixtures and the autouse cache above are not runs."""
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        defs = info.name2fixturedefs.get(name) if info else None
        if defs and defs[-1].baseid and not name.startswith("_"):
            if defs[-1].scope in ("module", "package", "session"):
                return True
    return False


# Files whose tests train models in processes forked from the test process. In a worker
# with one core, after some in-process audits of a model (tests/api/test_audit_model_data.py,
# the own-model rerun), torch refuses autograd in a forked child of that process, so these
# files are handed out first, one to each fresh worker (docs/TESTING.md).
FORK_FIRST = ("tests/reference/test_executors.py", "tests/e2e/test_gan_beside_models.py")


def _heavy_files_first(items: list[pytest.Item]) -> None:
    """Under ``--dist loadfile --no-loadscope-reorder`` a file is one unit of work, handed
    out in collection order: FORK_FIRST, then the end-to-end files and files with a slow
    test, then files with a shared run, and the quick files last, where they fill the gaps."""
    rank: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::")[0]
        slow = path.startswith("tests/e2e/") or "slow" in item.keywords
        here = -1 if path in FORK_FIRST else 0 if slow else 1 if _shares_a_run(item) else 2
        rank[path] = min(rank.get(path, 2), here)
    items.sort(key=lambda item: rank[item.nodeid.split("::")[0]])


# Folders whose files read one session-scoped run (tests/protocol/conftest.py's pipeline,
# half a minute): one unit of work under pytest-xdist, so that the run is made once.
ONE_UNIT = ("tests/protocol/",)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, unknown without it
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadfile``, except that each folder of ONE_UNIT is a single unit."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesAndFolders(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return next((f for f in ONE_UNIT if path.startswith(f)), path)

    return FilesAndFolders(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _heavy_files_first(items)
    if fashion_available():
        return
    skip = pytest.mark.skip(
        reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
    )
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)
