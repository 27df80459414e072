"""The blind baseline: a model-free classifier that sees only the inputs, never the model.

If a classifier that never queried the audited model separates the members from a set of
non-members as well as an attack does, the attack's success on that set says the two
groups of images differ (distribution shift), not that the model remembers its members
(Das, Zhang & Tramer, "Blind Baselines Beat Membership Inference Attacks for Foundation
Models"). Here: logistic regression on block-averaged pixels, cross-fitted so that every
sample is scored by a classifier that did not train on it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["BLIND_FOLDS", "BLIND_GRID", "blind_scores", "pixel_features"]

#: pixels are averaged down to ``BLIND_GRID x BLIND_GRID`` per channel
BLIND_GRID = 8
#: cross-fitting folds
BLIND_FOLDS = 5


def pixel_features(x: np.ndarray | torch.Tensor, *, grid: int = BLIND_GRID) -> np.ndarray:
    """``(N, C, H, W)`` images -> ``(N, C * grid * grid)`` float64 block averages.

    Averaging keeps what a shift in the inputs shows (brightness, scale, layout, noise)
    and drops the fine detail a classifier of a few hundred samples would overfit.
    """
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim != 4:
        raise ValueError(f"inputs must be (N, C, H, W), got shape {tuple(t.shape)}")
    pooled = F.adaptive_avg_pool2d(t.detach().to("cpu", torch.float64), grid)
    return pooled.reshape(len(t), -1).numpy()


def blind_scores(
    features: np.ndarray, is_member: np.ndarray, *, seed: int, folds: int = BLIND_FOLDS
) -> np.ndarray:
    """Cross-fitted member scores ``(N,)`` (higher = member) from inputs alone.

    The samples are dealt into ``folds`` folds by a seeded permutation, members and
    non-members separately (so each fold has both); each fold is scored by a
    standardised, class-balanced logistic regression fitted on the other folds. A group
    smaller than ``folds`` gets fewer folds. Same inputs and seed, same bytes.

    Args:
        features: ``(N, D)`` float, e.g. :func:`pixel_features`.
        is_member: ``(N,)`` bool, with at least two members and two non-members.
        seed: the fold assignment's seed.
        folds: at least 2.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f = np.asarray(features, dtype=np.float64)
    m = np.asarray(is_member, dtype=bool)
    if f.ndim != 2 or m.shape != (len(f),):
        raise ValueError(f"features {f.shape} and is_member {m.shape} do not match")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    n_in, n_out = int(m.sum()), int((~m).sum())
    if min(n_in, n_out) < 2:
        raise ValueError(f"need two members and two non-members, got {n_in} and {n_out}")
    rng = np.random.default_rng(seed)
    fold = np.empty(len(f), dtype=np.int64)
    for group in (np.flatnonzero(m), np.flatnonzero(~m)):
        k = min(folds, len(group))
        fold[group[rng.permutation(len(group))]] = np.arange(len(group)) % k
    out = np.empty(len(f), dtype=np.float64)
    for i in range(folds):
        test = fold == i
        if not test.any():
            continue
        clf = make_pipeline(
            StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000)
        )
        clf.fit(f[~test], m[~test])
        out[test] = clf.decision_function(f[test])
    return out
