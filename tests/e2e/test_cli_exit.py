"""How the command line ends: its exit status, after every exit handler, without
Python's teardown (``cli.EndWithoutTeardown``)."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

from mistrust import cli

# a command-line start (main() without argv) whose command registers an exit handler and
# keeps an object that only the interpreter's teardown would free; logging's handlers
# are closed by logging.shutdown, registered at import, before the command
SCRIPT = """
import atexit, logging, os, sys
from mistrust import cli

class Closed(logging.Handler):
    def emit(self, record): pass
    def close(self):
        os.write(1, b"logging shut down\\n")
        super().close()

class Freed:
    def __del__(self): os.write(1, b"teardown\\n")

logging.getLogger("probe").addHandler(Closed())
command = cli._main

def run(argv):
    atexit.register(os.write, 1, b"exit handler\\n")
    cli.kept = Freed()
    return command(argv)

cli._main = run
sys.argv = ["mistrust", *sys.argv[1:]]
cli.main()
"""


def test_the_command_line_ends_after_the_exit_handlers_without_teardown(tmp_path) -> None:
    # a command that fails at once (no config file): its status is the error's, 2
    args = ["check", str(tmp_path / "missing.yaml")]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.splitlines() == ["exit handler", "logging shut down"], proc.stdout
    assert proc.stderr.startswith("mistrust: error: config file") and proc.stderr.count("\n") == 1


def test_the_command_line_uses_no_private_atexit_function() -> None:
    assert "_run_exitfuncs" not in inspect.getsource(cli)
