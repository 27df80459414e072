"""The scripts in examples/ run as documented and show the paper's effect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_audit_arrays_shows_ood_false_positives() -> None:
    out = _run("audit_arrays.py")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert set(rows) == {"threshold", "entropy", "loss"}
    for tpr, fpr, fpr_ood in (map(float, v) for v in rows.values()):
        # members leak (TPR > FPR), and the over-confident OOD non-members look like members
        assert tpr > fpr and fpr < 0.5 < 0.9 < fpr_ood


@pytest.mark.slow
def test_audit_from_logits_synthetic_demo() -> None:
    out = _run("audit_from_logits.py")
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["attack", "set"]
    assert len(lines) == 1 + 6 * 2  # six attacks, two sets
