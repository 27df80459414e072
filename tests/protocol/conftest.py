"""Fixtures of the protocol tests; helpers live in ``protocol_helpers``."""

from __future__ import annotations

import pytest
from protocol_helpers import OVERRIDES, PipelineRun, Recorded, install_recorders


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    from mistrust.config import load_config
    from mistrust.study.run import run_experiment

    rec = Recorded()
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("MISTRUST_CACHE", str(tmp_path_factory.mktemp("protocol-cache")))
        install_recorders(mp, rec)
        cfg = load_config("smoke", OVERRIDES)
        run_dir = tmp_path_factory.mktemp("protocol") / "run"
        result = run_experiment(cfg, run_dir)
    finally:
        mp.undo()
    return PipelineRun(cfg, run_dir, result, rec)


@pytest.fixture(scope="session")
def data(pipeline: PipelineRun):
    """The run's pools and splits, loaded again (``load_data`` is deterministic)."""
    from mistrust.study.data import load_data

    return load_data(pipeline.cfg.data, seed=pipeline.cfg.seed)


@pytest.fixture(scope="session")
def target_model(pipeline: PipelineRun):
    from mistrust.study.train import load_model

    model, _ = load_model(pipeline.run_dir / "models" / "base" / "target.pt", pipeline.cfg.model)
    return model


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "pipeline" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.pipeline)
        if "tiny_reference" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.trains)
