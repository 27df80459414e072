"""Bad configuration: one error line, exit 2, and the run directory untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from reliability_helpers import assert_user_error, run_cli, run_tiny

CASES = {
    # id: (overrides, words the error line must hold)
    "unknown-key": (["train.epoch=3"], ["unknown key train.epoch", "known keys"]),
    "wrong-type": (["train.epochs=many"], ["train.epochs: expected an integer"]),
    "negative-split-size": (["data.train_size=-5"], ["data.train_size must be positive"]),
    "oversized-train-split": (
        ["data.train_size=100000", "data.members=10"],
        ["data.train_size (100000) x 2 roles exceeds the", "training images available"],
    ),
    "oversized-test-split": (
        ["data.test_size=100000", "data.nonmembers=10"],
        ["data.test_size (100000) x 2 roles exceeds the", "test images available"],
    ),
    "members-exceed-train-split": (
        ["data.members=65"],
        ["data.members (65) cannot exceed data.train_size (64)"],
    ),
    "nonmembers-exceed-test-split": (
        ["data.nonmembers=65"],
        ["data.nonmembers (65) cannot exceed data.test_size (64)"],
    ),
    "unknown-attack": (["attacks.names=[lira]"], ["unknown attack 'lira'", "threshold"]),
    "unknown-dataset": (["data.dataset=imagenet"], ["unknown dataset 'imagenet'", "digits"]),
    "unknown-model": (["model.arch=vgg16"], ["unknown model 'vgg16'", "salem-cnn"]),
    "unknown-variant": (["variants.names=[dropout]"], ["unknown variant 'dropout'", "laplace"]),
    "unknown-eval-set": (["eval.sets=[imagenet]"], ["unknown evaluation set 'imagenet'"]),
    "duplicate-eval-set": (["eval.sets=[original, original]"], ["eval.sets has duplicates"]),
    "held-out-class-missing": (
        ["data.held_out_classes=[12]"],
        ["class 12 does not exist", "0..9"],
    ),
    "held-out-leaves-one-class": (
        ["data.held_out_classes=[0, 1, 2, 3, 4, 5, 6, 7, 8]"],
        ["leaves 1 class(es)", "at least 2"],
    ),
    "top-k-exceeds-classes": (
        ["attacks.names=[salem]", "attacks.top_k=11"],
        ["attacks.top_k (11) exceeds the 10 classes"],
    ),
    "salem-rows-below-two": (
        ["attacks.salem_rows=1"],
        ["attacks.salem_rows must be at least 2, or null for every shadow row, got 1"],
    ),
    "non-finite-number": (["train.lr=.inf"], ["train.lr must be a finite number"]),
    "folder-shadows-builtin-set": (
        ["eval.folders={scaled: /tmp}"],
        ["'scaled' is a built-in evaluation set"],
    ),
    "negative-seed": (["seed=-1"], ["seed must be an integer in [0, 2^31), got -1"]),
    "empty-attack-list": (["attacks.names=[]"], ["attacks.names is empty; name at least one"]),
    "too-many-reference-models": (
        ["reference.n_models=1000000"],
        ["reference.n_models must be at most 4096"],
    ),
    "pretrained-without-weights": (
        ["model.pretrained=true"],
        ["model.pretrained: salem-cnn has no pretrained weights; set model.pretrained: false"],
    ),
    "variant-without-held-out-data": (
        ["data.nonmembers=64", "variants.names=[base, temperature-fit]"],
        [
            "variant temperature-fit fits on held-out test data, but data.test_size (64) "
            "equals data.nonmembers (64)",
            "make data.test_size larger than data.nonmembers",
        ],
    ),
    "model-too-small-for-input": (
        ["data.image_size=2"],
        ["model.arch: salem-cnn cannot be built for 1x2x2 inputs", "data.image_size"],
    ),
    "held-out-set-without-classes": (
        ["eval.sets=[original, held-out]"],
        ["'held-out' needs test images of classes left out of training"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_error(case: str, capsys, expect_untouched) -> None:
    overrides, needles = CASES[case]
    res = expect_untouched(lambda out: run_tiny(capsys, out, *overrides))
    assert_user_error(res, *needles)


def test_missing_config_file(capsys, tmp_path: Path) -> None:
    res = run_cli(capsys, "run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "r"))
    assert_user_error(res, "config file", "not found")
    assert not (tmp_path / "r").exists()


def test_config_file_not_yaml(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    res = run_cli(capsys, "run", str(bad), "--out", str(tmp_path / "r"))
    assert_user_error(res, "not valid YAML")


def test_config_file_with_unknown_preset(capsys, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preset: smokey\n")
    res = run_cli(capsys, "run", str(cfg), "--out", str(tmp_path / "r"))
    assert_user_error(res, "unknown preset 'smokey'", "smoke")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(capsys, expect_untouched) -> None:
    res = expect_untouched(lambda out: run_tiny(capsys, out, "device=cuda"))
    assert_user_error(res, "CUDA is not available", "--device cpu")


def test_report_without_a_run(capsys, tmp_path: Path) -> None:
    res = run_cli(capsys, "report", str(tmp_path / "nothing"))
    assert_user_error(res, "no results.csv in run directory", "run `mistrust run` into it first")
