"""Model outputs, computed once per (variant, role, dataset) and cached on disk.

Each file ``outputs/<variant>/<role>/<dataset>.npz`` holds ``logits (N, C)``
float32, ``labels (N,)`` int64 and ``features (N, D)`` float32 (the
penultimate activations, for last-layer calibration). Everything after this
stage reads these files; no later stage runs a model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mistrust.io import atomic_savez, load_npz
from mistrust.models.base import Classifier

log = logging.getLogger(__name__)


@dataclass
class Outputs:
    logits: np.ndarray  # (N, C) float32
    labels: np.ndarray  # (N,) int64, -1 where unknown
    features: np.ndarray | None = None  # (N, D) float32

    def __len__(self) -> int:
        return len(self.logits)

    def subset(self, index: np.ndarray) -> Outputs:
        feats = None if self.features is None else self.features[index]
        return Outputs(self.logits[index], self.labels[index], feats)

    def save(self, path: Path) -> None:
        arrays = {"logits": self.logits.astype(np.float32), "labels": self.labels.astype(np.int64)}
        if self.features is not None:
            arrays["features"] = self.features.astype(np.float32)
        atomic_savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> Outputs:
        data = load_npz(path)
        return cls(data["logits"], data["labels"], data.get("features"))


@torch.inference_mode()
def compute_outputs(
    model: Classifier,
    x: torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> Outputs:
    """Run ``model`` once over float inputs ``x (N, C, H, W)`` (already transformed)."""
    model.eval()
    logits, feats = [], []
    for i in range(0, len(x), batch_size):
        f = model.features(x[i : i + batch_size].to(device))
        feats.append(f.float().cpu())
        logits.append(model.head(f).float().cpu())
    if not logits:
        raise ValueError("cannot compute outputs of an empty input set")
    lab = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return Outputs(torch.cat(logits).numpy(), lab.astype(np.int64), torch.cat(feats).numpy())


def cached(path: Path, compute: Callable[[], Outputs]) -> Outputs:
    """Load ``path`` if present, else compute and save it atomically."""
    if path.is_file():
        try:
            return Outputs.load(path)
        except (OSError, ValueError, KeyError) as exc:
            log.warning("recomputing unreadable cache %s (%s)", path, exc)
    out = compute()
    out.save(path)
    return out
