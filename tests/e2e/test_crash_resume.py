"""A run killed with SIGKILL resumes with the same command and ends byte-identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ARGS = [
    "run",
    "--preset",
    "smoke",
    "--quiet",
    "--no-report",  # results.csv is what is compared; the report has its own tests
    "--set",
    "train.epochs=6",  # a checkpoint after the first epoch: a window to kill the run in training
    "--set",
    "data.train_size=100",  # half the smoke preset: resuming does not depend on the size
    "--set",
    "data.test_size=100",
    "--set",
    "data.members=50",
    "--set",
    "data.nonmembers=50",
    "--set",
    "variants.names=[base, temperature]",
    "--set",
    "eval.sets=[original, scaled]",
]


def _cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "mistrust.cli", *ARGS, "--out", str(out)]


def _kill_when(out: Path, ready, timeout: float = 300) -> bool:
    """Start a run, SIGKILL it once ``ready(out)`` holds; False if it finished first."""
    proc = subprocess.Popen(_cmd(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready(out):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.02)
    proc.wait()
    return False


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("ref") / "run"
    subprocess.run(_cmd(out), check=True, capture_output=True, timeout=600)
    return (out / "results.csv").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize(
    "stage, ready",
    [
        ("training", lambda out: any((out / "models").rglob("*.ckpt.pt"))),
        ("outputs", lambda out: any((out / "outputs").rglob("*.npz"))),
    ],
)
def test_kill_and_resume(tmp_path: Path, reference_run: bytes, stage: str, ready) -> None:
    out = tmp_path / "run"
    killed = _kill_when(out, ready)
    assert killed, f"the run finished before reaching {stage}"
    assert not (out / "results.csv").exists()
    proc = subprocess.run(_cmd(out), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "results.csv").read_bytes() == reference_run
    assert not list(out.rglob("*.tmp")), "no temporary file is left behind"


@pytest.mark.slow
def test_fresh_runs_are_byte_identical(tmp_path: Path, reference_run: bytes) -> None:
    subprocess.run(_cmd(tmp_path / "again"), check=True, capture_output=True, timeout=600)
    assert (tmp_path / "again" / "results.csv").read_bytes() == reference_run
    assert not (tmp_path / "again" / "report.html").exists(), "--no-report skips the report"
