"""Concurrent runs sharing a cache (MISTRUST_CACHE, its GAN cache) or a run directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from reliability_helpers import TINY

from mistrust.io import exclusive, load_npz

SETS = [
    "--set",
    "eval.sets=[original, gan]",
    "--set",
    "eval.gan_epochs=1",
    "--set",
    "eval.gan_images=64",
]


def _start(out: Path, cache: Path) -> subprocess.Popen:
    # one thread each: two processes share the 2 cores without oversubscription
    env = {**os.environ, "MISTRUST_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    code = "import sys; from mistrust.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, "run", *TINY, *SETS, "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_concurrent_runs_share_a_cache(tmp_path: Path) -> None:
    """Two processes run at once into two run directories with one MISTRUST_CACHE, both
    needing the same GAN: both finish, with identical valid results and one valid GAN file."""
    cache = tmp_path / "cache"
    runs = [tmp_path / "a", tmp_path / "b"]
    procs = [_start(run, cache) for run in runs]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    assert (runs[0] / "results.csv").read_bytes() == (runs[1] / "results.csv").read_bytes()
    for run in runs:
        for npz in run.rglob("*.npz"):
            load_npz(npz)  # complete, readable
        assert not list(run.rglob("*.tmp")), "no half-written file is left behind"
        assert np.isfinite(load_npz(run / "outputs/base/target/gan.npz")["logits"]).all()
    gans = list((cache / "gan").glob("gan-*.pt"))
    assert len(gans) == 1, gans
    assert torch.load(gans[0], weights_only=True)["state_dict"]
    assert not list(cache.rglob("*.tmp"))


def test_second_run_on_a_run_directory_waits_for_the_first(
    capsys, tmp_path: Path, monkeypatch
) -> None:
    """While another process holds RUN (here: this test), a run into RUN writes nothing;
    it proceeds once RUN is released."""
    monkeypatch.setenv("MISTRUST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    result: list[int] = []
    with exclusive(out):
        worker = threading.Thread(target=lambda: result.append(_run_in_process(out)))
        worker.start()
        log = out / "log.txt"
        deadline = time.monotonic() + 60
        while "waiting for another process" not in (log.read_text() if log.is_file() else ""):
            assert time.monotonic() < deadline, "the run never reported that it waits"
            time.sleep(0.05)
        time.sleep(0.2)
        assert worker.is_alive()
        assert sorted(p.name for p in out.iterdir()) == ["log.txt"], "nothing written yet"
    worker.join(120)
    assert result == [0]
    assert (out / "results.csv").is_file()


def _run_in_process(out: Path) -> int:
    from mistrust.cli import main

    return main(["run", *TINY, "--out", str(out)])


def test_lock_makes_the_second_holder_wait(tmp_path: Path) -> None:
    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with exclusive(tmp_path / "run"):
            first_in.set()
            time.sleep(0.3)
            order.append("first out")

    def second() -> None:
        first_in.wait()
        with exclusive(tmp_path / "run"):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert order == ["first out", "second in"]
    assert list((tmp_path / "run").iterdir()) == [], "locking a directory adds nothing to it"


def test_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from mistrust.io import exclusive\n"
        "with exclusive(Path(sys.argv[1])):\n"
        "    print('locked', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        done = threading.Event()

        def take() -> None:
            with exclusive(tmp_path / "run"):
                done.set()

        threading.Thread(target=take, daemon=True).start()
        assert done.wait(5), "the lock of a killed process must not block later runs"
    finally:
        if proc.poll() is None:
            proc.kill()
