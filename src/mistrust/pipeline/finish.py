"""The end of a run or an audit, once every variant is scored: galleries, the per-sample
view, ``config.yaml``, the result files and the report.

``mistrust run`` and ``mistrust audit`` both end here (:func:`finish_run`), so their run
directories hold the same files by the same rules; they differ only in what they hand
in (an audit of outputs alone has no images to draw).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import yaml

from mistrust.io import atomic_write_text, load_npz
from mistrust.pipeline.scoring import Stages
from mistrust.present.results import RunResult, write_results
from mistrust.rows import MetricRow
from mistrust.runtime.paths import RunPaths

log = logging.getLogger(__name__)

__all__ = ["Members", "finish_run"]


@dataclass
class Members:
    """The target's members as the per-sample view names and draws them."""

    index: np.ndarray  # (M,) each member row's index in its pool, in the scores' order
    labels: np.ndarray  # (M,) its class (-1: none given)
    images: torch.Tensor | None  # uint8 (P, C, H, W), row ``index[i]`` is member i; None: none


def finish_run(
    paths: RunPaths,
    result: RunResult,
    *,
    variants: Sequence[str],
    attacks: Sequence[str],
    config: dict[str, Any],
    saved_config: dict[str, Any],
    displays: Mapping[str, torch.Tensor],
    target_scores: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]],
    members: Members,
    gallery_size: int,
    timer: Stages,
    report: bool,
) -> RunResult:
    """Write everything a run directory holds after the scores, and return ``result``.

    ``config``: the whole config as ``results.json`` records it; ``saved_config``: what
    ``config.yaml`` holds (an audit leaves out settings it did not use); ``displays``:
    the images each evaluation set shows in its gallery (sets without one are not drawn);
    ``target_scores``: ``{variant: {attack: {set: score}}}``; ``gallery_size``: images
    per gallery (0: none); ``report``: build ``report.html`` too.
    """
    with timer.stage("gallery", say="false-positive galleries"):
        _galleries(paths, variants[0], displays, target_scores.get(variants[0], {}), gallery_size)
    with timer.stage("per-sample"):
        _per_sample(paths, variants, result.attack_rows, members, gallery_size)
    with timer.stage("results"):
        atomic_write_text(paths.config, yaml.safe_dump(saved_config, sort_keys=False))
        write_results(result, variants=list(variants), attacks=list(attacks), config=config)
    if report:
        with timer.stage("report", say=f"report: {paths.report_html}"):
            from mistrust.present.report import build_report

            build_report(paths.root)
    return result


def _galleries(
    paths: RunPaths,
    variant: str,
    displays: Mapping[str, torch.Tensor],
    scores: Mapping[str, Mapping[str, np.ndarray]],
    k: int,
) -> None:
    """Top-scored non-members of each set with a display, for the first variant and the
    first attack that scored it."""
    from mistrust.present.report.gallery import nonmember_gallery, save_galleries

    attack = next(iter(scores), None)
    if attack is None or k <= 0:
        return
    save_galleries(
        [
            nonmember_gallery(
                displays[name],
                score,
                load_npz(paths.scores(variant, attack, name))["max_score"],
                paths.gallery(name),
                k=k,
                title=f"{name}: highest {attack} scores among non-members ({variant})",
            )
            for name, score in scores[attack].items()
            if name in displays
        ]
    )


def _per_sample(
    paths: RunPaths, variants: Sequence[str], rows: list[MetricRow], members: Members, k: int
) -> None:
    """``vulnerable.csv`` and ``agreement.csv`` for every variant, from the saved scores;
    the most vulnerable members of the first variant drawn as ``figures/vulnerable.png``."""
    from mistrust.present.report.gallery import save_gallery
    from mistrust.present.vulnerable import per_sample_view, write_per_sample

    views = [
        per_sample_view(
            paths.variant_scores(v),
            rows,
            variant=v,
            k=k,
            member_index=members.index,
            member_label=members.labels,
        )
        for v in variants
    ]
    write_per_sample(paths, views)
    first = views[0]
    if first.vulnerable and members.images is not None:
        top = [x.index for x in first.vulnerable]
        save_gallery(
            members.images[torch.as_tensor(top)],
            np.array([x.max_score for x in first.vulnerable]),
            paths.figure("vulnerable"),
            title=f"Most vulnerable members: largest {first.strongest} margin ({first.variant})",
            captions=[f"#{x.index} · class {x.label}" for x in first.vulnerable],
            is_member=np.ones(len(top), dtype=bool),
        )
