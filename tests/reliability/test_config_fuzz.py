"""Config fuzzing: random single-key mutations of every preset through ``mistrust check``.

Each mutation (wrong type, negative, zero, out of range, huge, empty list, unknown
name, null, a mapping where a value belongs) must end in exit 0 or in exactly one
``mistrust: error:`` line with exit 2, never a traceback. Stand-in data keeps every
check to a fraction of a second; the seed fixes which mutations run.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from mistrust.cli import main
from mistrust.config import Config, preset_names

#: values as a user would type them after ``--set key=`` (parsed as YAML)
MUTATIONS = (
    "many",  # wrong type
    "-1",  # negative
    "-2.5",
    "0",  # zero
    "0.5",
    "3",
    "1000000000000",  # huge
    "1e300",
    ".inf",
    "[]",  # empty list
    "[nonexistent]",  # unknown name in a list
    "[-1, 99]",
    "[null]",
    "nonexistent",  # unknown name
    "",  # null
    "null",
    "true",
    "{a: 1}",  # a mapping
    "[1, 2]",
    "../../escape",
)
PER_KEY = 5  # random (preset, value) pairs per key
SKIP = {"data.stand_in"}  # the fuzz runs on stand-in data


def _keys(obj: object, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out += _keys(value, prefix + f.name + ".")
        else:
            out.append(prefix + f.name)
    return out


def _cases(seed: int = 12) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    presets = preset_names()
    keys = [k for k in _keys(Config()) if k not in SKIP]
    return [
        (rng.choice(presets), f"{key}={rng.choice(MUTATIONS)}")
        for key in keys
        for _ in range(PER_KEY)
    ]


def test_cases_cover_every_key_and_preset() -> None:
    cases = _cases()
    assert {p for p, _ in cases} == set(preset_names())
    assert {m.split("=")[0] for _, m in cases} == set(_keys(Config())) - SKIP


@pytest.mark.slow
def test_no_mutation_ends_in_a_traceback(capsys) -> None:
    failures = []
    for preset, mutation in _cases():
        capsys.readouterr()
        args = ["check", "--preset", preset, "--set", "data.stand_in=true", "--set", mutation]
        try:
            code = main(args)
        except SystemExit as exc:  # argparse itself (not reached by --set values)
            code = exc.code
        except Exception as exc:  # noqa: BLE001 - collect every traceback, then fail once
            failures.append(f"{preset} --set {mutation}: {type(exc).__name__}: {exc}")
            continue
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mistrust")]
        if code == 2 and (len(err) != 1 or not err[0].startswith("mistrust: error: ")):
            failures.append(f"{preset} --set {mutation}: exit 2 with {err}")
        elif code not in (0, 2):
            failures.append(f"{preset} --set {mutation}: exit {code}")
    assert not failures, "\n".join(failures)
