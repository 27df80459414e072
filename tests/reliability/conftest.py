"""Fixtures of the reliability tests; helpers live in ``reliability_helpers``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from reliability_helpers import TINY, Result, assert_untouched, snapshot

from mistrust.cli import main


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (made once); copy it before changing anything in it."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MISTRUST_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        mp.delenv("MISTRUST_DATA", raising=False)
        code = main(["run", *TINY, "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny run (modification times kept)."""
    dest = tmp_path / "run"
    shutil.copytree(tiny_run, dest, copy_function=shutil.copy2)
    return dest


@pytest.fixture
def expect_untouched(
    run_copy: Path,
) -> Callable[[Callable[[Path], Result]], Result]:
    """``expect_untouched(lambda out: run_...(out))``: run a failing command on a finished
    run directory and check that nothing in it changed."""

    def check(command: Callable[[Path], Result]) -> Result:
        before = snapshot(run_copy)
        res = command(run_copy)
        assert_untouched(run_copy, before)
        return res

    return check


@pytest.fixture(autouse=True)
def _no_user_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRUST_DATA", raising=False)
