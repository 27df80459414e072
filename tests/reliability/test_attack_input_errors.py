"""Outputs handed to attacks and metrics: malformed arrays raise InputError (a ValueError)
naming the problem; NaN outputs of a diverged model stop a run with one line and exit 2."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import assert_user_error, run_tiny

from mistrust.attacks import SCORE_BASED_ATTACKS, create_attack
from mistrust.errors import InputError, MistrustError
from mistrust.metrics import attack_metrics
from mistrust.metrics.rates import auroc


def _outputs(n: int = 40, c: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c))
    labels = rng.integers(0, c, n)
    is_member = np.arange(n) % 2 == 0
    return logits, labels, is_member


def _attack(name: str):
    return create_attack(name, top_k=3, seed=0)


def _fitted(name: str):
    attack = _attack(name)
    if name == "salem":
        attack.max_epochs = 20
    return attack.fit(*_outputs())


def _with(logits: np.ndarray, row: int, value: float) -> np.ndarray:
    out = logits.copy()
    out[row, 1] = value
    return out


FIT_CASES = {
    # id: (make (logits, labels, is_member) from good ones, words of the message)
    "nan-logits": (lambda x, y, m: (_with(x, 3, np.nan), y, m), "NaN or Inf in 1 of 40 rows"),
    "inf-logits": (lambda x, y, m: (_with(x, 0, -np.inf), y, m), "NaN or Inf in 1 of 40 rows"),
    "logits-1d": (lambda x, y, m: (x[:, 0], y, m), "must be 2-D (n_samples, n_classes)"),
    "single-class": (lambda x, y, m: (x[:, :1], y * 0, m), "at least 2 classes"),
    "labels-too-short": (
        lambda x, y, m: (x, y[:-5], m),
        "logits have 40 rows but labels have 35 entries",
    ),
    "labels-out-of-range": (lambda x, y, m: (x, y + 4, m), "labels must lie in [0, 4)"),
    "membership-too-long": (
        lambda x, y, m: (x, y, np.r_[m, True]),
        "logits have 40 rows but is_member has 41 entries",
    ),
    "no-members": (lambda x, y, m: (x, y, m & False), "got 0 members and 40 non-members"),
    "no-nonmembers": (lambda x, y, m: (x, y, m | True), "got 40 members and 0 non-members"),
    "string-logits": (lambda x, y, m: (x.astype(str), y, m), "must be a real numeric array"),
}


@pytest.mark.parametrize("attack", SCORE_BASED_ATTACKS)
@pytest.mark.parametrize("case", list(FIT_CASES))
def test_fit_rejects(case: str, attack: str) -> None:
    make, message = FIT_CASES[case]
    with pytest.raises(InputError, match=re.escape(message)) as info:
        _attack(attack).fit(*make(*_outputs()))
    assert isinstance(info.value, ValueError) and isinstance(info.value, MistrustError)


SCORE_CASES = {
    "nan-logits": (lambda x, y: (_with(x, 2, np.nan), y), "NaN or Inf in 1 of 40 rows"),
    "other-class-count": (lambda x, y: (x[:, :3], y % 3), "fitted on 4 classes but logits have 3"),
    "labels-too-long": (lambda x, y: (x, np.r_[y, 0]), "40 rows but labels have 41 entries"),
    "labels-2d": (lambda x, y: (x, y[:, None]), "labels must be 1-D"),
}


@pytest.mark.parametrize("attack", SCORE_BASED_ATTACKS)
@pytest.mark.parametrize("case", list(SCORE_CASES))
def test_score_rejects(case: str, attack: str) -> None:
    make, message = SCORE_CASES[case]
    fitted = _fitted(attack)
    x, y, _ = _outputs(seed=1)
    with pytest.raises(InputError, match=re.escape(message)):
        fitted.score(*make(x, y))


METRIC_CASES = {
    "nan-score": (lambda s, m: (np.r_[s[:-1], np.nan], m), "score contains NaN or Inf"),
    "length-mismatch": (lambda s, m: (s, m[:-1]), "score has 40 entries but is_member has 39"),
    "no-members": (lambda s, m: (s, m & False), "need both members and non-members"),
    "no-nonmembers": (lambda s, m: (s, m | True), "need both members and non-members"),
    "2d-score": (lambda s, m: (s[:, None], m), "must be 1-D"),
}


@pytest.mark.parametrize("case", list(METRIC_CASES))
def test_metrics_reject(case: str) -> None:
    make, message = METRIC_CASES[case]
    rng = np.random.default_rng(0)
    s, m = rng.normal(size=40), np.arange(40) % 2 == 0
    bad_s, bad_m = make(s, m)
    with pytest.raises(InputError, match=re.escape(message)):
        auroc(bad_s, bad_m)
    with pytest.raises(InputError, match=re.escape(message)):
        attack_metrics(bad_s, bad_m, np.zeros(len(bad_s), bool), max_score=np.ones(len(bad_s)))


def test_diverged_model_is_one_line(capsys, tmp_path: Path) -> None:
    """A learning rate that blows the model up: NaN logits stop the run before any attack."""
    out = tmp_path / "run"
    res = run_tiny(capsys, out, "train.lr=1e10")
    assert_user_error(
        res, "outputs of base/target on train", "NaN or Inf for 64 of 64 inputs", "lower train.lr"
    )
    assert not list((out / "outputs").rglob("*.npz")), "NaN outputs are never cached"
    assert not (out / "results.csv").exists() and not (out / "config.yaml").exists()
