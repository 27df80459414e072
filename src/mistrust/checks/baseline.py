"""The blind baseline: a model-free classifier that sees only the inputs, never the model.

If a classifier that never queried the audited model separates the members from a set of
non-members as well as an attack does, the attack's success on that set says the two
groups of images differ (distribution shift), not that the model remembers its members
(Das, Zhang & Tramer, "Blind Baselines Beat Membership Inference Attacks for Foundation
Models"). Here: logistic regression on block-averaged pixels, cross-fitted so that every
sample is scored by a classifier that did not train on it.

Up to :data:`BLIND_NEWTON_ABOVE` samples each fold is fitted by scikit-learn; above it,
by :mod:`mistrust.checks.logreg_newton`, which minimises the same objective over blocks
of rows without copying the training folds (docs/CHECKS.md, "The blind baseline at scale").
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mistrust.checks.logreg_newton import fit_folds

__all__ = [
    "BLIND_FOLDS",
    "BLIND_GRID",
    "BLIND_NEWTON_ABOVE",
    "blind_method",
    "blind_scores",
    "feature_dtype",
    "pixel_features",
]

#: pixels are averaged down to ``BLIND_GRID x BLIND_GRID`` per channel
BLIND_GRID = 8
#: cross-fitting folds
BLIND_FOLDS = 5
#: above this many samples the folds are fitted by blocked Newton steps, not scikit-learn:
#: same objective, same folds. The default preset's sets (1,000 samples with the members)
#: stay below it, so their scores keep their bytes; above it scikit-learn's L-BFGS, on
#: pooled pixels, already takes seconds (10,000 samples: 9 s against 0.2 s)
BLIND_NEWTON_ABOVE = 5_000
#: images pooled at a time: the float64 copy of a block (3 MiB at 28 x 28), not of all
#: inputs, is in memory, and stays in the cache
_POOL_BLOCK = 512


def feature_dtype(n: int, *, newton_above: int = BLIND_NEWTON_ABOVE) -> type[np.floating]:
    """The dtype of ``n`` samples' pooled features: float64 up to the switch, float32 above.

    Below the switch scikit-learn fits them and their scores keep their bytes. Above it the
    features are the fit's largest array (a million 28 x 28 images: 490 MiB as float64)
    while the blocked fit computes in float64 a block at a time, so float32 halves the
    audit's largest array and costs only the rounding of each average to float32 (none
    at all for uint8 images whose pooling windows have 2^k pixels, e.g. 28 x 28 to 8 x 8).
    """
    return np.float32 if blind_method(n, newton_above=newton_above) == "newton" else np.float64


def pixel_features(
    x: np.ndarray | torch.Tensor,
    *,
    grid: int = BLIND_GRID,
    dtype: type[np.floating] | None = None,
) -> np.ndarray:
    """``(N, C, H, W)`` images -> ``(N, C * grid * grid)`` block averages.

    Averaging keeps what a shift in the inputs shows (brightness, scale, layout, noise)
    and drops the fine detail a classifier of a few hundred samples would overfit.
    Images are pooled a block at a time in float64 (each image's average does not depend
    on the others), so a million inputs never exist as float64 at once; each average is
    then stored as ``dtype`` (by default :func:`feature_dtype` of ``N``), rounded once.
    """
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim != 4:
        raise ValueError(f"inputs must be (N, C, H, W), got shape {tuple(t.shape)}")
    t = t.detach()
    if dtype is None:
        dtype = feature_dtype(len(t))
    out = np.empty((len(t), t.shape[1] * grid * grid), dtype=dtype)
    threads = torch.get_num_threads()
    # a block is small work to share: on a busy 2-core machine, a second thread made
    # uint8 blocks 1.3-3.4 times slower (float32: 0.75-1.9) in alternating runs
    torch.set_num_threads(1)
    try:
        for s in range(0, len(t), _POOL_BLOCK):
            block = t[s : s + _POOL_BLOCK].to("cpu", torch.float64)
            out[s : s + len(block)] = F.adaptive_avg_pool2d(block, grid).reshape(len(block), -1)
    finally:
        torch.set_num_threads(threads)
    return out


def blind_method(n: int, *, newton_above: int = BLIND_NEWTON_ABOVE) -> str:
    """The solver that fits ``n`` samples: ``"sklearn"`` or ``"newton"``."""
    return "newton" if n > newton_above else "sklearn"


def blind_scores(
    features: np.ndarray,
    is_member: np.ndarray,
    *,
    seed: int,
    folds: int = BLIND_FOLDS,
    newton_above: int = BLIND_NEWTON_ABOVE,
) -> np.ndarray:
    """Cross-fitted member scores ``(N,)`` (higher = member) from inputs alone.

    The samples are dealt into ``folds`` folds by a seeded permutation, members and
    non-members separately (so each fold has both); each fold is scored by a
    standardised, class-balanced logistic regression (L2 penalty, C = 1) fitted on the
    other folds. A group smaller than ``folds`` gets fewer folds. Same inputs and seed,
    same bytes.

    Args:
        features: ``(N, D)`` float, e.g. :func:`pixel_features`.
        is_member: ``(N,)`` bool, with at least two members and two non-members.
        seed: the fold assignment's seed.
        folds: at least 2.
        newton_above: above this many samples the folds are fitted by
            :func:`mistrust.checks.logreg_newton.fit_folds` (the same minimiser, found to
            a tighter tolerance, in blocks of rows) instead of scikit-learn.
    """
    f = np.asarray(features)
    if not np.issubdtype(f.dtype, np.floating):
        f = f.astype(np.float64)
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
    if blind_method(len(f), newton_above=newton_above) == "newton":
        return fit_folds(f, m, fold, folds)
    return _sklearn_folds(np.asarray(f, dtype=np.float64), m, fold, folds)


def _sklearn_folds(f: np.ndarray, m: np.ndarray, fold: np.ndarray, folds: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

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
