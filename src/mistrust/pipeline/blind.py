"""The blind baseline of a run: inputs in, per-sample scores cached in the run directory.

The baseline never sees a model (:mod:`mistrust.checks.baseline`); it needs the inputs,
which only this stage has. Its scores go into the audit core beside every attack's
(:func:`mistrust.core.audit.audit`, ``baseline_scores``). ``RUN/baseline/<set>.npz`` holds
``score`` (members first, then the set, as the attack scores) and the ``key`` of what
it was computed from, so a rerun reuses it and a changed input recomputes it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

import numpy as np
import torch

from mistrust.checks.baseline import (
    BLIND_FOLDS,
    BLIND_GRID,
    blind_method,
    blind_scores,
    feature_dtype,
    pixel_features,
)
from mistrust.data.bundle import Data
from mistrust.data.evalsets import EvalInputs
from mistrust.io import atomic_savez, load_npz
from mistrust.runtime.paths import RunPaths

log = logging.getLogger(__name__)

__all__ = ["run_baseline", "score_sets"]


def _key(features: np.ndarray, is_member: np.ndarray, seed: int) -> str:
    # scikit-learn's scores keep the key they always had; the other solver's are its own
    solver = "" if blind_method(len(features)) == "sklearn" else "-newton"
    h = hashlib.sha256(f"logreg-{BLIND_GRID}-{BLIND_FOLDS}-{seed}{solver}".encode())
    h.update(np.ascontiguousarray(features))  # the buffer itself: no copy of N x D
    h.update(np.ascontiguousarray(is_member))
    return h.hexdigest()


def run_baseline(
    data: Data,
    sets: Mapping[str, EvalInputs],
    set_names: list[str],
    paths: RunPaths,
    *,
    seed: int,
) -> dict[str, np.ndarray]:
    """Blind-baseline scores of the target's members paired with each set of ``set_names``.

    Args:
        data: the run's pools, splits and preprocessing (members: ``target_members`` of
            the train pool; ``original``: ``target_nonmembers`` of the test pool).
        sets: the evaluation inputs of every other set, model-ready ``x``.
        set_names: the sets to score, in the run's order.
        paths: the run directory; scores are cached as ``baseline/<set>.npz``.
        seed: the fold assignment's seed.

    Returns:
        ``{set: score (n_members + n_set,)}``, in the order of the attack scores.
    """
    sp = data.splits

    def model_ready(pool: object, split: str) -> torch.Tensor:
        return data.preprocess(pool.subset(sp[split]).images)  # type: ignore[attr-defined]

    inputs = {
        name: model_ready(data.test, "target_nonmembers") if name == "original" else sets[name].x
        for name in set_names
    }
    return score_sets(model_ready(data.train, "target_members"), inputs, paths, seed=seed)


def score_sets(
    members: torch.Tensor,
    sets: Mapping[str, torch.Tensor],
    paths: RunPaths,
    *,
    seed: int,
) -> dict[str, np.ndarray]:
    """Blind-baseline scores of ``members`` paired with each set, cached in the run's ``baseline/``.

    Args:
        members: ``(M, C, H, W)`` the target's members as the model sees them.
        sets: per set name, its ``(N, C, H, W)`` non-members as the model sees them.
        paths: the run directory; ``baseline/<set>.npz`` is reused while its inputs are the
            same.
        seed: the fold assignment's seed.

    Returns:
        ``{set: score (M + N,)}``, members first, as the attack scores; sets with fewer
        than 2 samples on a side are left out (the verdicts say the baseline was not run).
    """
    member_features = pixel_features(members)
    out = {}
    for name, x in sets.items():
        if min(len(member_features), len(x)) < 2:  # nothing to cross-fit: the verdicts say so
            log.warning("blind baseline: %s has fewer than 2 samples; not run", name)
            continue
        # the dtype of all the rows the fit sees: float64 up to the switch, as always
        dtype = feature_dtype(len(member_features) + len(x))
        features = np.concatenate([member_features, pixel_features(x, dtype=dtype)], dtype=dtype)
        is_member = np.arange(len(features)) < len(member_features)
        key = _key(features, is_member, seed)
        path = paths.baseline(name)
        if path.is_file():
            cached = load_npz(path)
            if str(cached.get("key", "")) == key:
                out[name] = cached["score"]
                continue
        out[name] = blind_scores(features, is_member, seed=seed)
        atomic_savez(path, score=out[name], key=np.array(key))
        log.debug("blind baseline: %s scored", name)
    return out
