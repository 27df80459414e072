"""The scoring stage of a study: calibration, blind baseline, attacks and model metrics.

Everything here reads the models' cached outputs (``RUN/outputs``); nothing runs a
model. The post-hoc calibration fits in a process of its own while the blind baseline
and the trained variants' attacks run (:func:`mistrust.posthoc.start_posthoc`), then
the post-hoc variants' attacks run one per free core.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import numpy as np
import torch

from mistrust.attacks.signals import loss
from mistrust.blind import run_baseline
from mistrust.checks.canary import canary_audit
from mistrust.checks.dp import CANARY_SET, accounting_rows, canary_rows, dp_violation_rows
from mistrust.config import Config
from mistrust.data.bundle import Data
from mistrust.data.evalsets import EvalInputs
from mistrust.data.splits import ROLES, positions
from mistrust.evaluate import RoleOutputs, evaluate_attacks, model_metrics
from mistrust.executors import free_cores, run_calls
from mistrust.io import load_npz
from mistrust.outputs import Outputs
from mistrust.posthoc import start_posthoc
from mistrust.rows import MetricRow, ModelRow
from mistrust.run_paths import RunPaths
from mistrust.study_data import iid_sets
from mistrust.training.private import read_accounting
from mistrust.variants import Variant

log = logging.getLogger(__name__)


class Stages(Protocol):
    """Times named stages (:class:`mistrust.experiment.Timer`)."""

    def stage(self, name: str, *, say: str | None = None) -> AbstractContextManager[None]: ...


@dataclass
class Scored:
    """What the scoring stage hands on: rows, the target's per-sample scores
    ``{variant: {attack: {set: score}}}``, the fitted post-hoc parameters and the blind
    baseline's scores per set."""

    attack_rows: list[MetricRow] = field(default_factory=list)
    model_rows: list[ModelRow] = field(default_factory=list)
    target_scores: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    variant_info: dict[str, dict] = field(default_factory=dict)
    blind: dict[str, np.ndarray] = field(default_factory=dict)


def role_outputs(
    paths: RunPaths, variant: str, role: str, splits: dict[str, np.ndarray], set_names: list[str]
) -> RoleOutputs:
    """``role``'s cached outputs of ``variant``: its splits, attack members and non-members,
    and (the target's) evaluation sets."""
    train = Outputs.load(paths.outputs(variant, role, "train"))
    test = Outputs.load(paths.outputs(variant, role, "test"))
    members = train.subset(positions(splits[f"{role}_train"], splits[f"{role}_members"]))
    nonmembers = test.subset(positions(splits[f"{role}_test"], splits[f"{role}_nonmembers"]))
    sets = {}
    if role == "target":
        for name in set_names:
            sets[name] = (
                nonmembers
                if name == "original"
                else Outputs.load(paths.outputs(variant, role, name))
            )
    return RoleOutputs(members, nonmembers, train, test, sets)


def attack_variant(
    cfg: Config,
    paths: RunPaths,
    data: Data,
    set_names: list[str],
    blind: dict[str, np.ndarray],
    variant: str,
) -> tuple[list[MetricRow], dict[str, dict[str, np.ndarray]], list[ModelRow]]:
    """One variant's attack rows, per-sample target scores and model rows, from its cached
    outputs (``scores/<variant>/`` written on the way)."""
    log.debug("attacks and metrics: %s", variant)
    per_role = {role: role_outputs(paths, variant, role, data.splits, set_names) for role in ROLES}
    rows, scores = evaluate_attacks(
        cfg.attacks,
        variant,
        per_role["target"],
        per_role["shadow"],
        paths.variant_scores(variant),
        seed=cfg.seed,
        baseline=blind,
        iid_sets=iid_sets(cfg),
    )
    model_rows = [r for role in ROLES for r in model_metrics(variant, role, per_role[role])]
    flags, private_rows = privacy_rows(paths, variant, rows, delta=cfg.variants.dp_delta)
    return rows + flags, scores, model_rows + private_rows


def privacy_rows(
    paths: RunPaths, variant: str, rows: list[MetricRow], *, delta: float
) -> tuple[list[MetricRow], list[ModelRow]]:
    """``variant``'s privacy rows (docs/DP.md): what each role's accountant says its DP-SGD
    training spent, the canary audit of its target (at ``delta``), and the DP check of
    every attack's and the canaries' epsilon lower bound against the target's epsilon."""
    model_rows: list[ModelRow] = []
    for role in ROLES:
        spent = read_accounting(paths.privacy(variant, role))
        if spent is not None:
            model_rows += accounting_rows(variant, role, spent)
    target = read_accounting(paths.privacy(variant, "target"))
    eps = None if target is None else float(target["dp_epsilon"])
    canary_out = paths.outputs(variant, "target", CANARY_SET)
    if paths.canaries.is_file() and canary_out.is_file():
        out = Outputs.load(canary_out)
        score = -loss(out.logits, out.labels)  # the wrong label's log-probability
        audit = canary_audit(score, load_npz(paths.canaries)["included"], delta=delta)
        model_rows += canary_rows(variant, audit, eps)
    flags = [] if eps is None else dp_violation_rows(rows, variant, eps)
    return flags, model_rows


def score_study(
    cfg: Config,
    paths: RunPaths,
    data: Data,
    sets: dict[str, EvalInputs],
    variants: list[Variant],
    timer: Stages,
    device: torch.device,
) -> Scored:
    """Calibrate, score every variant's attacks and measure every model, in
    ``variants`` order (see the module docstring for what runs beside what)."""
    posthoc = [v.name for v in variants if v.posthoc]
    # beside the blind baseline and the trained variants' attacks, which need none of it
    calibration = (
        start_posthoc(
            posthoc,
            cfg.variants,
            paths,
            data.splits,
            seed=cfg.seed,
            batch_size=cfg.train.batch_size,
            here=device.type == "cuda",
        )
        if posthoc
        else None
    )
    info: dict[str, dict] = {}
    attack_rows: list[MetricRow] = []
    model_rows: list[ModelRow] = []
    set_names = list(cfg.eval.sets)

    def attack(name: str) -> tuple[list[MetricRow], dict, list[ModelRow]]:
        return attack_variant(cfg, paths, data, set_names, blind, name)

    try:
        with free_cores():  # one core is the calibration's until it ends
            with timer.stage("blind baseline", say="blind baseline: inputs only, no model"):
                blind = run_baseline(data, sets, set_names, paths, seed=cfg.seed)
            t0 = time.perf_counter()
            done: dict[str, tuple[list[MetricRow], dict, list[ModelRow]]] = {}
            with timer.stage("attacks"):
                for v in variants:
                    if not v.posthoc:
                        done[v.name] = attack(v.name)
        if calibration is not None:
            say = f"calibration: {', '.join(posthoc)} (beside the attacks; waited)"
            with timer.stage("calibration", say=say):
                info = calibration.result()
            calibration = None
        with timer.stage("attacks"):  # independent variants: one per free core
            done |= dict(
                zip(posthoc, run_calls([partial(attack, n) for n in posthoc]), strict=True)
            )
    finally:
        if calibration is not None:
            calibration.cancel()
    target_scores = {}
    for v in variants:
        rows, scores, mrows = done[v.name]
        attack_rows += rows
        target_scores[v.name] = scores
        model_rows += mrows
    log.info(
        "attacks and metrics: %d variants x %d attacks (%.1f s)",
        len(variants),
        len(cfg.attacks.names),
        time.perf_counter() - t0,
    )
    return Scored(attack_rows, model_rows, target_scores, info, blind)
