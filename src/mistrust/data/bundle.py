"""The loaded data of one run: both image pools, how to preprocess them, and the splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mistrust.data.images import ImageSet, Preprocess

__all__ = ["Data"]


@dataclass
class Data:
    """Everything later stages read about the data, built once per run.

    ``train`` / ``test`` are the dataset's pools (uint8 images ``(N, C, H, W)``,
    labels remapped to ``0..num_classes-1`` when classes are held out);
    ``splits`` holds the index arrays of :func:`mistrust.data.splits.make_splits`.
    """

    train: ImageSet
    test: ImageSet
    held_out: ImageSet | None  # test images of the held-out classes, labels as loaded
    preprocess: Preprocess
    num_classes: int
    splits: dict[str, np.ndarray]
