"""Canaries of the one-run privacy audit (docs/DP.md): training images with random
wrong labels, each put into the target's training data by a fair coin.

The images come from the training pool outside every role's training split, so no
canary is a member by any other route. A wrong label makes a canary an outlier the
model can only fit by memorising it, which is what the audit looks for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the name of the canaries' outputs (``RUN/outputs/<variant>/target/canaries.npz``)
CANARIES = "canaries"
#: the seed stream of the canaries, apart from the splits' and the attacks'
CANARY_STREAM = 7


@dataclass(frozen=True)
class Canaries:
    index: np.ndarray  # (m,) rows of the training pool
    label: np.ndarray  # (m,) int64, each different from the image's own label
    included: np.ndarray  # (m,) bool: in the target's training data

    def arrays(self) -> dict[str, np.ndarray]:
        return {"index": self.index, "label": self.label, "included": self.included}


def draw_canaries(
    labels: np.ndarray, used: np.ndarray, count: int, num_classes: int, *, seed: int
) -> Canaries:
    """``count`` canaries among the pool's rows not in ``used``: a seeded sample of rows,
    a wrong label each (uniform over the other classes), a fair coin each for inclusion.

    Raises:
        ValueError: fewer than ``count`` unused rows, or fewer than 2 classes.
    """
    if num_classes < 2:
        raise ValueError("canaries need at least 2 classes (a wrong label each)")
    free = np.setdiff1d(np.arange(len(labels)), np.asarray(used))
    if count > len(free):
        raise ValueError(
            f"canaries.count ({count}) exceeds the {len(free)} training-pool images outside "
            "the roles' training splits"
        )
    rng = np.random.default_rng([seed, CANARY_STREAM])
    index = np.sort(rng.choice(free, size=count, replace=False))
    shift = rng.integers(1, num_classes, size=count)
    label = (np.asarray(labels)[index].astype(np.int64) + shift) % num_classes
    included = rng.random(count) < 0.5
    return Canaries(index.astype(np.int64), label, included)
