"""The import layers of .importlinter hold, and the check does catch an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache", str(ROOT / ".importlinter")],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(src)},
        timeout=300,
        check=False,
    )


def test_contracts_are_kept() -> None:
    done = _lint(ROOT / "src", ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_upward_import_inside_a_function_breaks_them(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "src" / "mistrust", tmp_path / "mistrust")
    target = tmp_path / "mistrust" / "metrics" / "distance.py"
    target.write_text(
        target.read_text() + "\n\ndef _sneaky():\n    from mistrust.config import Config\n"
    )
    done = _lint(tmp_path, tmp_path)
    assert done.returncode != 0
    assert "mistrust.metrics.distance -> mistrust.config" in done.stdout
