"""DP-SGD training with Opacus (docs/DP.md).

The model's per-sample gradients are clipped to ``max_grad_norm`` and Gaussian noise
is added to their sum (Opacus's ``PrivacyEngine.make_private``). Batches are drawn by
Poisson sampling (each training image independently with rate ``batch_size / N``), as
the accountant assumes. The noise multiplier is the smallest that keeps the whole
training, ``epochs`` passes at that rate, within ``(epsilon, delta)`` under
:data:`ACCOUNTANT`; what the accountant says was spent is handed back with it.

Same seed, same bytes: the initial weights (torch's global RNG), the Poisson
sampling (the data loader's ``torch.Generator``, which Opacus's sampler draws from)
and the noise (``noise_generator``) are all seeded from ``seed``.

Unlike :func:`mistrust.training.train_model` there is no mid-training checkpoint: the
accountant's state would have to travel with it. A finished model is reused as any
other; a DP model killed while training starts again from its first epoch.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mistrust.data.images import Preprocess
from mistrust.training.trainer import TrainHistory, TrainSettings, make_optimizer

log = logging.getLogger(__name__)

#: Opacus's accountant: Renyi DP (Mironov 2017), deterministic and fast; its epsilon is
#: an upper bound, a little above what the PRV accountant would report for the same noise
ACCOUNTANT = "rdp"


@dataclass(frozen=True)
class DPSettings:
    """What DP-SGD is asked for: a target ``(epsilon, delta)`` over the whole training,
    and the per-sample gradient norm clip."""

    epsilon: float
    delta: float
    max_grad_norm: float


def make_private_compatible(model: nn.Module) -> nn.Module:
    """``model``, or a copy with the layers Opacus cannot train privately replaced
    (``ModuleValidator.fix``: BatchNorm becomes GroupNorm, which normalises per sample).
    In-place activations are made out-of-place (same values): Opacus's backward hooks
    refuse a layer output that is modified in place."""
    from opacus.validators import ModuleValidator

    if not ModuleValidator.is_valid(model):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns about every layer it replaces
            model = ModuleValidator.fix(model)
    for m in model.modules():
        if getattr(m, "inplace", False):
            m.inplace = False
    return model


@functools.lru_cache(maxsize=64)  # a few seconds each; target and shadow often share one
def noise_multiplier(dp: DPSettings, *, sample_rate: float, epochs: int) -> float:
    """The smallest noise multiplier for which ``epochs`` passes of Poisson-sampled
    DP-SGD at ``sample_rate`` stay within ``dp``'s ``(epsilon, delta)``."""
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Optimal order is the largest alpha")
        return float(
            get_noise_multiplier(
                target_epsilon=dp.epsilon,
                target_delta=dp.delta,
                sample_rate=sample_rate,
                epochs=epochs,
                accountant=ACCOUNTANT,
            )
        )


@functools.lru_cache(maxsize=64)  # the accountant's series take a second or so
def spent_epsilon(history: tuple[tuple[float, float, int], ...], delta: float) -> float:
    """The epsilon at ``delta`` of an accountant history ``((noise multiplier, sample
    rate, steps), ...)``, as Opacus's accountant records it."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = list(history)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Optimal order is the largest alpha")
        return float(accountant.get_epsilon(delta))


def train_private(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    preprocess: Preprocess,
    cfg: TrainSettings,
    dp: DPSettings,
    *,
    seed: int,
    device: torch.device | str = "cpu",
    desc: str = "train",
) -> tuple[TrainHistory, dict[str, Any]]:
    """Train ``model`` in place with DP-SGD on uint8 ``images (N, C, H, W)`` and ``labels``.

    ``model`` must pass Opacus's validator (:func:`make_private_compatible`).
    ``cfg.batch_size`` is the expected batch size of the Poisson sampling.
    Returns the history and the accounting: ``dp_epsilon`` (what the accountant says the
    training spent), ``dp_delta``, ``dp_noise_multiplier``, and the settings behind them.
    """
    from opacus import PrivacyEngine

    device = torch.device(device)
    torch.manual_seed(seed)
    model.to(device)  # contiguous: channels-last inputs corrupt Opacus's per-sample convs
    n = len(images)
    loader = DataLoader(
        TensorDataset(torch.arange(n)),
        batch_size=min(cfg.batch_size, n),
        generator=torch.Generator().manual_seed(seed),
    )
    sample_rate = 1 / len(loader)
    sigma = noise_multiplier(dp, sample_rate=sample_rate, epochs=cfg.epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus warns of its secure_mode being off
        engine = PrivacyEngine(accountant=ACCOUNTANT)
        private, opt, loader = engine.make_private(
            module=model,
            optimizer=make_optimizer(model, cfg),
            data_loader=loader,
            noise_multiplier=sigma,
            max_grad_norm=dp.max_grad_norm,
            poisson_sampling=True,
            noise_generator=torch.Generator(device=device).manual_seed(seed + 1),
        )
    x_all, y_all = images.to(device), labels.to(device)
    hist = TrainHistory()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # Opacus's hooks fire on a first layer whose input needs no gradient: as meant
        warnings.filterwarnings("ignore", "Full backward hook is firing")
        for epoch in range(cfg.epochs):
            private.train()
            total, correct, seen = 0.0, 0, 0
            for (idx,) in loader:  # Poisson-sampled rows: the batch size varies
                idx = idx.to(device)
                y = y_all[idx]
                out = private(preprocess(x_all[idx]))
                loss = F.cross_entropy(out, y, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()  # clip per sample, add the noise, step
                if len(idx):
                    total += float(loss.detach()) * len(idx)
                    correct += int((out.detach().argmax(1) == y).sum())
                    seen += len(idx)
            hist.loss.append(total / max(seen, 1))
            hist.accuracy.append(correct / max(seen, 1))
            log.debug("%s: epoch %d/%d loss %.4f", desc, epoch + 1, cfg.epochs, hist.loss[-1])
    spent = spent_epsilon(tuple(engine.accountant.history), dp.delta)
    hist.seconds = time.perf_counter() - t0
    private.remove_hooks()  # hand back the plain module, as trained
    for p in model.parameters():
        p.grad_sample = None
    model.eval()
    accounting = {
        "dp_epsilon": spent,
        "dp_delta": dp.delta,
        "dp_noise_multiplier": sigma,
        "dp_target_epsilon": dp.epsilon,
        "dp_max_grad_norm": dp.max_grad_norm,
        "dp_sample_rate": sample_rate,
        "dp_epochs": cfg.epochs,
        "accountant": ACCOUNTANT,
    }
    if not math.isfinite(spent) or spent > dp.epsilon * 1.01:
        log.warning("%s: the accountant reports epsilon %.3f above the target", desc, spent)
    return hist, accounting


def write_accounting(path: Path, accounting: dict[str, Any]) -> None:
    from mistrust.io import atomic_write_text

    atomic_write_text(path, json.dumps(accounting, indent=1, sort_keys=True) + "\n")


def read_accounting(path: Path) -> dict[str, Any] | None:
    """A model's privacy file, or None where the model did not train privately."""
    if not path.is_file():
        return None
    return json.loads(path.read_text())
