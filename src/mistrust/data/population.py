"""The reference population of the reference-model attacks (LiRA, RMIA) and who trains on whom.

Rows are the audited samples (the target's attack members, then its attack
non-members) followed by the shadow training pool. Reference models come in
complementary pairs on the audited samples (model ``2j`` trains on a random half,
model ``2j+1`` on the other half; RMIA's "paired models"), so each audited sample
is IN for exactly half of them (``n_models`` even). Each model is then filled up to
``population_size`` samples with random shadow-pool samples. RMIA's population
samples ``z`` are ``z_size`` shadow-pool samples (disjoint from the audited ones).

Index arrays only: the images are looked up by :func:`population_images`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mistrust.data.bundle import Data
from mistrust.errors import ConfigError
from mistrust.io import atomic_savez

log = logging.getLogger(__name__)

__all__ = ["Population", "make_population", "population_images"]

_KEEP_STREAM = 0x5EF  # seeds the keep matrix: np.random.default_rng([seed, _KEEP_STREAM, ...])


@dataclass
class Population:
    """Who is in the reference population and which model trains on whom.

    Rows ``[0, n_members)`` are the target's attack members, ``[n_members,
    n_audited)`` its attack non-members, the rest the shadow training pool.
    """

    source: np.ndarray  # (P,) int64: 0 = train pool, 1 = test pool
    index: np.ndarray  # (P,) int64 index into that pool
    n_members: int
    n_audited: int
    keep: np.ndarray  # (M, P) bool: model m trains on row p
    z: np.ndarray  # (Z,) int64 rows used as RMIA population samples (sorted)

    @property
    def in_mask(self) -> np.ndarray:
        """``(P, M)`` bool: row ``p`` is IN for model ``m`` (the attacks' layout)."""
        return self.keep.T

    def save(self, path: Path) -> None:
        atomic_savez(
            path,
            source=self.source,
            index=self.index,
            keep=self.keep,
            z=self.z,
            n_members=np.int64(self.n_members),
            n_audited=np.int64(self.n_audited),
        )

    def digest(self, m: int) -> str:
        """Short hash of model ``m``'s training samples (part of its fingerprint)."""
        rows = np.flatnonzero(self.keep[m])
        key = np.stack([self.source[rows], self.index[rows]]).astype(np.int64).tobytes()
        return hashlib.sha256(key).hexdigest()[:10]


def make_population(
    splits: dict[str, np.ndarray], *, n_models: int, population_size: int, z_size: int, seed: int
) -> Population:
    """The population, paired keep matrix and ``z`` samples (module docstring).

    Args:
        splits: index arrays ``target_members``, ``target_nonmembers`` and ``shadow_train``
            (:func:`mistrust.data.splits.make_splits`).
        n_models: reference models ``M``.
        population_size: samples each model trains on.
        z_size: RMIA population samples (capped at the shadow pool).
        seed: the run's seed; one generator per pair / model / purpose, so adding models
            later keeps the existing models' training sets.

    Raises:
        ConfigError: ``population_size`` below half the audited samples or above that
            plus the shadow pool.
    """
    members, nonmembers = splits["target_members"], splits["target_nonmembers"]
    pool = splits["shadow_train"]
    source = np.concatenate(
        [np.zeros(len(members)), np.ones(len(nonmembers)), np.zeros(len(pool))]
    ).astype(np.int64)
    index = np.concatenate([members, nonmembers, pool]).astype(np.int64)
    a, s = len(members) + len(nonmembers), len(pool)
    lo, hi = (a + 1) // 2, a // 2 + s
    if not lo <= population_size <= hi:
        raise ConfigError(
            f"reference.population_size ({population_size}) must lie between half the audited "
            f"samples ({lo}) and that plus the shadow pool ({hi})"
        )
    keep = np.zeros((n_models, a + s), bool)
    for m in range(0, n_models, 2):
        rng = np.random.default_rng([seed, _KEEP_STREAM, 0, m // 2])
        half = np.zeros(a, bool)
        half[rng.permutation(a)[: a // 2 + (m // 2) % 2 * (a % 2)]] = True  # alternate odd a
        keep[m, :a] = half
        if m + 1 < n_models:
            keep[m + 1, :a] = ~half
    for m in range(n_models):
        rng = np.random.default_rng([seed, _KEEP_STREAM, 1, m])
        need = population_size - int(keep[m, :a].sum())
        keep[m, a + rng.choice(s, size=max(need, 0), replace=False)] = True
    if z_size > s:
        log.warning("reference.z_size (%d) exceeds the shadow pool (%d); using %d", z_size, s, s)
    rng = np.random.default_rng([seed, _KEEP_STREAM, 2])
    z = np.sort(a + rng.permutation(s)[: min(z_size, s)]).astype(np.int64)
    return Population(source, index, len(members), a, keep, z)


def population_images(data: Data, pop: Population) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(P, C, H, W)`` and labels ``(P,)`` of the population rows."""
    train = torch.as_tensor(pop.source == 0)
    images = torch.empty((len(pop.index), *data.train.images.shape[1:]), dtype=torch.uint8)
    labels = torch.empty(len(pop.index), dtype=torch.long)
    idx = torch.as_tensor(pop.index)
    images[train], labels[train] = data.train.images[idx[train]], data.train.labels[idx[train]]
    images[~train], labels[~train] = data.test.images[idx[~train]], data.test.labels[idx[~train]]
    return images, labels
