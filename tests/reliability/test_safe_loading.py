"""Nothing a user or a stranger can put in a file runs code, and no name leaves the run directory."""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from reliability_helpers import assert_user_error, run_cli, run_tiny

import mistrust
from mistrust.config import ConfigError, check_name, load_config
from mistrust.errors import CheckpointError
from mistrust.io import load_npz
from mistrust.study.train import read_checkpoint

SRC = Path(mistrust.__file__).parent
MARKER = "mistrust-reliability-pwned"


class Payload:
    """Unpickling this calls ``Path(marker).touch()``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


# ---------------------------------------------------------------- pickles


def test_checkpoint_with_pickled_object_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / MARKER
    path = tmp_path / "target.pt"
    torch.save({"meta": {"arch": "salem-cnn"}, "state_dict": {}, "x": Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refusing to load.*pickled objects"):
        read_checkpoint(path)
    assert not marker.exists()


def test_run_refuses_a_planted_checkpoint(capsys, run_copy: Path, expect_untouched) -> None:
    marker = run_copy.parent / MARKER
    target = run_copy / "models/base/target.pt"
    state = torch.load(target, weights_only=True)
    state["meta"]["note"] = Payload(marker)
    torch.save(state, target)
    res = expect_untouched(lambda out: run_tiny(capsys, out))
    assert_user_error(res, "refusing to load", "delete the file to retrain")
    assert not marker.exists()


def test_npz_with_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.npz"
    np.savez(path, logits=np.array([Payload(tmp_path / MARKER)], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_npz(path)
    assert not (tmp_path / MARKER).exists()


def test_planted_output_cache_is_recomputed_not_unpickled(capsys, run_copy: Path) -> None:
    marker = run_copy.parent / MARKER
    cache = run_copy / "outputs/base/target/test.npz"
    good = load_npz(cache)
    np.savez(cache, logits=np.array([Payload(marker)], dtype=object), labels=np.zeros(1))
    res = run_tiny(capsys, run_copy)
    assert res.code == 0, res.stderr[-2000:]
    assert not marker.exists()
    again = load_npz(cache)
    assert np.array_equal(again["logits"], good["logits"])


def test_yaml_python_tags_are_refused(capsys, tmp_path: Path) -> None:
    marker = tmp_path / MARKER
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f"name: !!python/object/apply:pathlib.Path.touch [{marker}]\n")
    res = run_cli(capsys, "run", str(cfg), "--out", str(tmp_path / "r"))
    assert_user_error(res, "not valid YAML")
    assert not marker.exists()


def test_pickled_generator_needs_explicit_opt_in(tmp_path: Path) -> None:
    from mistrust.data.gan import load_generator_module

    marker = tmp_path / MARKER
    path = tmp_path / "g.pkl"
    torch.save(Payload(marker), path)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_generator_module(path)
    assert not marker.exists()


def _calls(tree: ast.AST, dotted: str) -> list[ast.Call]:
    owner, attr = dotted.rsplit(".", 1)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == attr
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == owner
        ):
            found.append(node)
    return found


def _keyword(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return "<missing>"


#: the only places allowed to unpickle, each behind an explicit opt-in argument
PICKLE_OPT_INS = {("data/gan.py", "load_generator_module")}


def _enclosing(tree: ast.AST, call: ast.Call) -> str:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(n is call for n in ast.walk(node)):
            return node.name
    return ""


def test_no_unsafe_loader_in_the_package() -> None:
    """torch.load only with weights_only=True, np.load only with allow_pickle=False, no
    yaml.load / pickle.load outside the documented opt-in (see docs/RELIABILITY.md)."""
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        rel = str(path.relative_to(SRC))
        tree = ast.parse(path.read_text())
        for call in _calls(tree, "torch.load"):
            if _keyword(call, "weights_only") is not True:
                if (rel, _enclosing(tree, call)) not in PICKLE_OPT_INS:
                    problems.append(f"{rel}:{call.lineno} torch.load without weights_only=True")
        for call in _calls(tree, "np.load"):
            if _keyword(call, "allow_pickle") is not False:
                problems.append(f"{rel}:{call.lineno} np.load without allow_pickle=False")
        for dotted in ("yaml.load", "yaml.unsafe_load", "pickle.load", "pickle.loads"):
            for call in _calls(tree, dotted):
                if (rel, _enclosing(tree, call)) not in PICKLE_OPT_INS:
                    problems.append(f"{rel}:{call.lineno} {dotted}")
    assert not problems, problems


# ---------------------------------------------------------------- names in paths

UNSAFE = ["../../etc/x", "..", "a/b", "/abs", "Upper", "-flag", "", "a..b", "x" * 65, "sp ace"]


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="not a valid name"):
        check_name(name, "eval.sets")


@pytest.mark.parametrize("name", ["original", "afhq-cat", "noise-gaussian", "my_set.v2", "0"])
def test_safe_names_pass(name: str) -> None:
    check_name(name, "eval.sets")


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["eval.sets=[original, ../../etc/x]", "eval.folders={../../etc/x: /tmp}"], "eval.sets"),
        (["eval.folders={../x: /tmp}"], "eval.folders"),
        (["variants.names=[../../x]"], "variants.names"),
        (["attacks.names=[../x]"], "attacks.names"),
        (["name=../../escaped"], "name"),
    ],
)
def test_path_escape_in_config(capsys, overrides, key, expect_untouched, tmp_path) -> None:
    res = expect_untouched(lambda out: run_tiny(capsys, out, *overrides))
    assert_user_error(res, f"{key}: '", "is not a valid name", "lowercase letters")
    assert not list(tmp_path.rglob("x*")) and not (tmp_path / "etc").exists()


def test_default_run_directory_cannot_escape(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="name: '../x'"):
        load_config("smoke", ["name=../x"])


def test_checkpoint_files_are_zip_archives_of_tensors(tiny_run: Path) -> None:
    """What weights_only=True accepts: mistrust's own files load with it."""
    path = tiny_run / "models/base/target.pt"
    assert zipfile.is_zipfile(path)
    state = torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
    assert set(state) == {"state_dict", "meta"}
