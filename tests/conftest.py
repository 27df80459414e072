from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before torch loads its OpenMP runtime (read once, at load): idle OpenMP threads sleep
# instead of spinning. Results do not change; on a shared 2-core machine a spinning thread
# steals the core its partner needs (a 2048 x 2048 eigendecomposition: 28 s spinning,
# 3.4 s sleeping, at load 14). The console runs the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FASHION = Path("/usr/share/datasets/fashion-mnist")


def fashion_available() -> bool:
    import os

    roots = [Path(os.environ["MISTRUST_DATA"])] if os.environ.get("MISTRUST_DATA") else []
    return any((r / "train-images-idx3-ubyte.gz").is_file() for r in [*roots, FASHION])


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    # never touch the user's cache from tests; session-wide, so module- and session-scoped
    # runs use it too, and every run of the session shares one GAN cache
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MISTRUST_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if fashion_available():
        return
    skip = pytest.mark.skip(
        reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
    )
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)
