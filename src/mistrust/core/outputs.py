"""Model outputs, computed once per (variant, role, dataset) and cached on disk.

Each file ``outputs/<variant>/<role>/<dataset>.npz`` holds ``logits (N, C)``
float32, ``labels (N,)`` int64 and ``features (N, D)`` float32 (the
penultimate activations, for last-layer calibration). Everything after this
stage reads these files; no later stage runs a model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mistrust.errors import OutputsError
from mistrust.io import atomic_savez, load_npz
from mistrust.models.base import Classifier
from mistrust.models.layout import memory_format_for

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
        """Read ``path``; ``ValueError`` / ``KeyError`` when its arrays do not fit together."""
        data = load_npz(path)
        out = cls(data["logits"], data["labels"], data.get("features"))
        out.check_shapes(str(path))
        return out

    def check_shapes(self, what: str = "outputs") -> None:
        """``ValueError`` unless logits ``(N, C)`` float, labels ``(N,)`` int, features ``(N, D)``."""
        n = len(self.logits)
        ok = (
            self.logits.ndim == 2
            and np.issubdtype(self.logits.dtype, np.floating)
            and self.labels.shape == (n,)
            and np.issubdtype(self.labels.dtype, np.integer)
            and (self.features is None or (self.features.ndim == 2 and len(self.features) == n))
        )
        if not ok:
            feats = None if self.features is None else self.features.shape
            raise ValueError(
                f"{what}: inconsistent arrays (logits {self.logits.shape} {self.logits.dtype}, "
                f"labels {self.labels.shape} {self.labels.dtype}, features {feats})"
            )

    def check_finite(self, what: str = "outputs", *, hint: str = "") -> None:
        """Raise :class:`OutputsError` if any logit is NaN or Inf (no attack can score it)."""
        bad = ~np.isfinite(self.logits).all(axis=1)
        if bad.any():
            raise OutputsError(
                f"{what}: the model's logits are NaN or Inf for {int(bad.sum())} of "
                f"{len(bad)} inputs, so no attack can score them; "
                + (hint or "the model diverged in training (lower train.lr)")
            )


#: inputs per forward pass of a convolutional model on a CPU: the activations of a batch
#: of 1024 (100 MB for SalemCNN) leave the cache, those of 64 stay in it; 6000 inputs
#: took 1.11 s at 1024 and 0.73 s at 64 (ResNet-18, 1024 inputs: 8.5 and 6.5 s). The
#: outputs equal those of one pass up to float rounding (bit-identical for the default
#: preset's SalemCNN: its results.csv did not change)
CPU_CONV_BATCH = 64


def compute_outputs(
    model: Classifier,
    x: torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
) -> Outputs:
    """Run ``model`` once over float inputs ``x (N, C, H, W)`` (already transformed).

    Convolutional models run in channels-last layout (about 2x faster on CPU, see
    BENCHMARKS.md) and are handed back contiguous; inside :func:`inference_layout` they
    are already converted and stay so. On a CPU they also run at most
    :data:`CPU_CONV_BATCH` inputs at a time, whatever ``batch_size``.
    """
    model.eval()
    if torch.device(device).type == "cpu" and memory_format_for(model) == torch.channels_last:
        batch_size = min(batch_size, CPU_CONV_BATCH)
    # converted outside inference mode only: parameters must stay ordinary (trainable) tensors
    layout = not torch.is_inference_mode_enabled()
    fmt = memory_format_for(model) if layout else torch.contiguous_format
    convert = layout and not _in_layout(model, fmt)
    if convert:
        model.to(memory_format=fmt)
    try:
        with torch.inference_mode():
            logits, feats = [], []
            for i in range(0, len(x), batch_size):
                f = model.features(x[i : i + batch_size].to(device).contiguous(memory_format=fmt))
                feats.append(f.float().cpu())
                logits.append(model.head(f).float().cpu())
    finally:
        if convert:
            model.to(memory_format=torch.contiguous_format)
    if not logits:
        raise ValueError("cannot compute outputs of an empty input set")
    lab = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return Outputs(torch.cat(logits).numpy(), lab.astype(np.int64), torch.cat(feats).numpy())


def _in_layout(model: torch.nn.Module, fmt: torch.memory_format) -> bool:
    return all(p.is_contiguous(memory_format=fmt) for p in model.parameters() if p.dim() == 4)


@contextmanager
def inference_layout(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` in the layout :func:`compute_outputs` runs it in, for a block of calls.

    Converting a convolutional model's weights is a copy of every one of them (seconds for
    a ResNet-50 on a busy CPU); a model queried on many sets is converted once here instead
    of twice per call, with the same outputs. Contiguous again after the block.
    """
    fmt = memory_format_for(model)
    model.to(memory_format=fmt)
    try:
        yield model
    finally:
        model.to(memory_format=torch.contiguous_format)


def cached(path: Path, compute: Callable[[], Outputs], *, model: str, dataset: str) -> Outputs:
    """Load ``path`` if present, else compute and save it atomically.

    ``model`` (e.g. ``"base/target"``) and ``dataset`` (``"train"``, ``"test"`` or a set)
    name what the file holds in error messages.

    A damaged or inconsistent file is recomputed (with a warning). Outputs with
    NaN or Inf logits raise :class:`~mistrust.errors.OutputsError` and are never
    cached, so a fixed config recomputes them.
    """
    if path.is_file():
        try:
            out = Outputs.load(path)
            out.check_finite(str(path))
            return out
        except (OSError, ValueError, KeyError, EOFError) as exc:
            log.warning("recomputing unreadable cache %s (%s)", path, exc)
    out = compute()
    out.check_shapes(str(path))
    what = f"outputs of {model} on {dataset}"
    hint = (
        ""
        if dataset in ("train", "test")
        else (
            "the model diverged in training (lower train.lr) or these inputs overflow it "
            "(e.g. lower eval.scale_factor)"
        )
    )
    out.check_finite(what, hint=hint)
    out.save(path)
    return out
