"""The paper's seeded, disjoint splits (docs/ARCHITECTURE.md, "One run", step 2).

Train pool -> (optional stratified draw) -> target-train | shadow-train.
Test pool -> target-test | shadow-test. Attack members are drawn from each
role's train split, attack non-members from its test split; what remains of a
test split is the role's held-out calibration data.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from mistrust.errors import ConfigError

ROLES = ("target", "shadow")


class SplitSizes(Protocol):
    """What the splits read; :class:`mistrust.config.DataConfig` is one (this module sits
    below the config layer, so it names the fields instead of importing the class)."""

    train_size: int  # per role
    test_size: int  # per role
    members: int  # drawn from each role's train split
    nonmembers: int  # drawn from each role's test split
    held_out_classes: list[int]
    stratified_pool: int | None


def _stratified_take(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` indices with class proportions kept (largest remainder), in random order."""
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / counts.sum()
    take = np.floor(quota).astype(int)
    extra = n - take.sum()
    take[np.argsort(-(quota - take), kind="stable")[:extra]] += 1
    picked = [
        rng.permutation(np.flatnonzero(labels == c))[:t] for c, t in zip(classes, take, strict=True)
    ]
    return rng.permutation(np.concatenate(picked))


def _halve(
    labels: np.ndarray, index: np.ndarray, each: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint stratified halves of ``index``, ``each`` samples apiece."""
    first = index[_stratified_take(labels[index], each, rng)]
    rest = np.setdiff1d(index, first)
    second = rest[_stratified_take(labels[rest], each, rng)]
    return np.sort(first), np.sort(second)


def make_splits(
    train_labels: np.ndarray, test_labels: np.ndarray, cfg: SplitSizes, *, seed: int
) -> dict[str, np.ndarray]:
    """Index arrays into the train / test pools (held-out classes removed first).

    Keys: ``{role}_train``, ``{role}_test``, ``{role}_members`` (into train),
    ``{role}_nonmembers`` and ``{role}_calibration`` (into test), and
    ``held_out_test`` (test samples of the held-out classes).
    """
    rng = np.random.default_rng(seed)
    held = np.asarray(cfg.held_out_classes, dtype=np.int64)
    train_ok = np.flatnonzero(~np.isin(train_labels, held))
    test_ok = np.flatnonzero(~np.isin(test_labels, held))
    pool = train_ok
    if cfg.stratified_pool is not None:
        if cfg.stratified_pool > len(train_ok) or cfg.stratified_pool < 2 * cfg.train_size:
            raise ConfigError(
                f"data.stratified_pool ({cfg.stratified_pool}) must lie between "
                f"2 x train_size ({2 * cfg.train_size}) and the {len(train_ok)} training images"
            )
        pool = train_ok[_stratified_take(train_labels[train_ok], cfg.stratified_pool, rng)]
    if 2 * cfg.train_size > len(pool):
        raise ConfigError(
            f"data.train_size ({cfg.train_size}) x 2 roles exceeds the "
            f"{len(pool)} training images available; lower data.train_size"
        )
    if 2 * cfg.test_size > len(test_ok):
        raise ConfigError(
            f"data.test_size ({cfg.test_size}) x 2 roles exceeds the "
            f"{len(test_ok)} test images available; lower data.test_size"
        )
    out: dict[str, np.ndarray] = {}
    out["target_train"], out["shadow_train"] = _halve(train_labels, pool, cfg.train_size, rng)
    out["target_test"], out["shadow_test"] = _halve(test_labels, test_ok, cfg.test_size, rng)
    for role in ROLES:
        out[f"{role}_members"] = np.sort(
            rng.choice(out[f"{role}_train"], cfg.members, replace=False)
        )
        nonmembers = np.sort(rng.choice(out[f"{role}_test"], cfg.nonmembers, replace=False))
        out[f"{role}_nonmembers"] = nonmembers
        out[f"{role}_calibration"] = np.setdiff1d(out[f"{role}_test"], nonmembers)
    out["held_out_test"] = np.flatnonzero(np.isin(test_labels, held))
    return {k: v.astype(np.int64) for k, v in out.items()}


def positions(split: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Where each element of ``subset`` sits inside the sorted ``split``."""
    pos = np.searchsorted(split, subset)
    if len(subset) and (pos.max() >= len(split) or not np.array_equal(split[pos], subset)):
        raise ValueError("subset is not contained in split")
    return pos
