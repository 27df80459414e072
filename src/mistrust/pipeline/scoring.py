"""Post-hoc variants, blind baseline, attacks and model metrics of every variant.

The scoring of ``mistrust run`` and ``mistrust audit`` alike, from the cached outputs
(``RUN/outputs``); nothing runs a model. Each variant is asked through its registered
object (:mod:`mistrust.calibration.variants`) what it is: a post-hoc one is fitted per
role (:mod:`mistrust.pipeline.posthoc`) before its attacks run. With ``fork``, the
post-hoc fits run in a process of their own while the blind baseline and the trained
variants' attacks run (:func:`mistrust.pipeline.posthoc.start_posthoc`), then the
post-hoc variants' attacks run one per free core; without it, everything runs here in
order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import numpy as np

from mistrust.calibration.variants import Variant
from mistrust.config import AttackConfig, VariantsConfig
from mistrust.pipeline.posthoc import check_labels, start_posthoc
from mistrust.pipeline.privacy import Guarantee
from mistrust.pipeline.roles import VariantScores, score_variant
from mistrust.rows import MetricRow, ModelRow
from mistrust.runtime.executors import free_cores, run_calls
from mistrust.runtime.paths import RunPaths

log = logging.getLogger(__name__)

__all__ = ["Scored", "Stages", "score_variants"]


class Stages(Protocol):
    """Times named stages (:class:`mistrust.pipeline.timing.Timer`)."""

    def stage(self, name: str, *, say: str | None = None) -> AbstractContextManager[None]: ...


@dataclass
class Scored:
    """What the scoring hands on: rows, the target's per-sample scores
    ``{variant: {attack: {set: score}}}``, the fitted post-hoc parameters and the blind
    baseline's scores per set (None: no inputs, no baseline)."""

    attack_rows: list[MetricRow] = field(default_factory=list)
    model_rows: list[ModelRow] = field(default_factory=list)
    target_scores: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    variant_info: dict[str, dict] = field(default_factory=dict)
    blind: dict[str, np.ndarray] | None = None


def score_variants(
    variants: Sequence[Variant],
    acfg: AttackConfig,
    vcfg: VariantsConfig,
    paths: RunPaths,
    splits: Mapping[str, np.ndarray],
    roles: Sequence[str],
    set_names: Sequence[str],
    *,
    seed: int,
    batch_size: int,
    iid_sets: Collection[str],
    baseline: Callable[[], dict[str, np.ndarray] | None],
    timer: Stages,
    fork: bool = True,
    here: bool = False,
    claimed: Guarantee | None = None,
) -> Scored:
    """Calibrate, score every variant's attacks and measure every model, in
    ``variants`` order.

    ``acfg`` / ``vcfg``: the ``attacks`` and ``variants`` sections; ``splits``: each
    role's index arrays (:func:`mistrust.data.splits.make_splits`'s names); ``roles``:
    the target, and the shadow if there is one; ``set_names``: the target's evaluation
    sets, ``original`` included; ``batch_size``: the training batch (the paper's Laplace
    loaders use twice it); ``baseline()``: the blind baseline's scores per set, computed
    beside the post-hoc fits. ``fork=False``: everything in this process, in order;
    ``here``: the post-hoc fits in this process (a run on a GPU: no fork); ``claimed``:
    the DP guarantee an audit's owner claims for the target (docs/DP.md), checked like
    an accountant's.
    """
    posthoc = [v.name for v in variants if v.posthoc]
    for name in posthoc:  # refused before anything is fitted
        check_labels(paths, roles, name)
    fits = partial(
        start_posthoc, vcfg=vcfg, paths=paths, splits=splits, seed=seed, batch_size=batch_size
    )
    # beside the blind baseline and the trained variants' attacks, which need none of it
    calibration = fits(posthoc, roles=roles, here=here or not fork) if posthoc else None
    info: dict[str, dict] = {}

    def attack(name: str) -> VariantScores:
        return score_variant(
            acfg,
            name,
            paths,
            splits,
            roles,
            set_names,
            seed=seed,
            baseline=blind,
            iid_sets=iid_sets,
            dp_delta=vcfg.dp_delta,
            claimed=claimed,
        )

    try:
        with free_cores() if fork else nullcontext():  # one core is the calibration's
            with timer.stage("blind baseline", say="blind baseline: inputs only, no model"):
                blind = baseline()
            t0 = time.perf_counter()
            done: dict[str, VariantScores] = {}
            with timer.stage("attacks"):
                for v in variants:
                    if not v.posthoc:
                        done[v.name] = attack(v.name)
        if calibration is not None:
            say = f"calibration: {', '.join(posthoc)}" + (
                " (beside the attacks; waited)" if fork else ""
            )
            with timer.stage("calibration", say=say):
                info = calibration.result()
            calibration = None
        with timer.stage("attacks"):  # independent variants: one per free core
            calls = [partial(attack, n) for n in posthoc]
            scored = run_calls(calls) if fork else [call() for call in calls]
            done |= dict(zip(posthoc, scored, strict=True))
    finally:
        if calibration is not None:
            calibration.cancel()
    out = Scored(variant_info=info, blind=blind)
    for v in variants:
        got = done[v.name]
        out.attack_rows += got.rows
        out.target_scores[v.name] = got.scores
        out.model_rows += got.model_rows
    log.info(
        "attacks and metrics: %d variants x %d attacks (%.1f s)",
        len(variants),
        len(acfg.names),
        time.perf_counter() - t0,
    )
    return out
