"""Training: optimiser, loss (label smoothing), checkpoints and resume."""

from mistrust.training.trainer import (
    AUGMENTS,
    OPTIMIZER_IMPORTS,
    OPTIMIZERS,
    TrainHistory,
    flip_crop,
    make_optimizer,
    train_model,
)

__all__ = [
    "AUGMENTS",
    "OPTIMIZER_IMPORTS",
    "OPTIMIZERS",
    "TrainHistory",
    "flip_crop",
    "make_optimizer",
    "train_model",
]
