"""Training: optimiser, loss (label smoothing), checkpoints and resume."""

from mistrust.training.trainer import TrainHistory, flip_crop, make_optimizer, train_model

__all__ = ["TrainHistory", "flip_crop", "make_optimizer", "train_model"]
