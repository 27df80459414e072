"""Helpers for the bad-input catalogue (docs/RELIABILITY.md).

Every CLI case runs ``mistrust.cli.main`` in-process on a tiny config (the
smoke preset shrunk to 64 images per split, one epoch, one attack) and checks
the contract: exit status 2, one line on stderr naming the problem and the
fix, no traceback, and the run directory it was pointed at left untouched
(``log.txt`` only grows: the failed attempt is appended to it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from mistrust.cli import main

TINY = [
    "--preset",
    "smoke",
    "--quiet",
    "--no-report",  # these tests check results and errors; the report has its own tests
    "--set",
    "train.epochs=1",
    "--set",
    "data.train_size=64",
    "--set",
    "data.test_size=64",
    "--set",
    "data.members=32",
    "--set",
    "data.nonmembers=32",
    "--set",
    "variants.names=[base]",
    "--set",
    "attacks.names=[threshold]",
    "--set",
    "eval.sets=[original]",
    "--set",
    "eval.gallery_size=4",
]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """``mistrust.cli.main(args)`` in-process; the exit status and what it printed."""
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return Result(code, out.out, out.err)


def run_tiny(capsys: pytest.CaptureFixture[str], out: Path, *sets: str) -> Result:
    """The tiny smoke run into ``out``; ``sets`` are extra ``--set`` overrides."""
    extra = [a for s in sets for a in ("--set", s)]
    return run_cli(capsys, "run", *TINY, *extra, "--out", str(out))


def assert_user_error(res: Result, *needles: str) -> str:
    """Exit 2, exactly one stderr line ``mistrust: error: ...`` holding every needle."""
    assert res.code == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    errors = [line for line in res.lines if line.startswith("mistrust: error: ")]
    assert len(errors) == 1, res.lines
    line = errors[0]
    for needle in needles:
        assert needle in line, line
    return line


Snapshot = dict[str, tuple[str, int]]


def snapshot(run_dir: Path) -> tuple[Snapshot, bytes]:
    """``{relative path: (sha256, mtime_ns)}`` of every file but log.txt, and log.txt's bytes."""
    files: Snapshot = {}
    for p in sorted(run_dir.rglob("*")):
        if p.is_file() and p.name != "log.txt":
            files[str(p.relative_to(run_dir))] = (
                hashlib.sha256(p.read_bytes()).hexdigest(),
                p.stat().st_mtime_ns,
            )
    log = run_dir / "log.txt"
    return files, log.read_bytes() if log.is_file() else b""


def assert_untouched(run_dir: Path, before: tuple[Snapshot, bytes]) -> None:
    files, log = snapshot(run_dir)
    assert files == before[0], "files of the run directory changed"
    assert log.startswith(before[1]), "log.txt may only grow"
