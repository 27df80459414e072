"""Memory layout of a model's tensors, shared by training and inference.

Both must agree: a model that trains in channels-last and answers in another
layout would compute (slightly) different outputs than one loaded from disk.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["memory_format_for"]


def memory_format_for(model: nn.Module) -> torch.memory_format:
    """Channels-last for models with 2-D convolutions (4-D weights), else contiguous."""
    conv = any(p.dim() == 4 for p in model.parameters())
    return torch.channels_last if conv else torch.contiguous_format
