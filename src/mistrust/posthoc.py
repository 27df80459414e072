"""Post-hoc variants: transform the base models' cached outputs, role by role.

Each role is calibrated with its own held-out data (the part of its test split
that the attacks never score), so the shadow mirrors the target exactly.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mistrust.config import Config, ConfigError
from mistrust.data.splits import ROLES, positions
from mistrust.outputs import Outputs

log = logging.getLogger(__name__)


def _calibration_set(base: Path, role: str, splits: dict[str, np.ndarray], what: str) -> Outputs:
    index = positions(splits[f"{role}_test"], splits[f"{role}_calibration"])
    if len(index) == 0:
        raise ConfigError(
            f"variant {what} needs held-out data: make data.test_size larger than data.nonmembers"
        )
    return Outputs.load(base / "test.npz").subset(index)


def _head(model_path: Path) -> torch.nn.Linear:
    state = torch.load(model_path, map_location="cpu", weights_only=True)["state_dict"]
    weight, bias = state["head.weight"], state["head.bias"]
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    head.load_state_dict({"weight": weight, "bias": bias})
    return head


def apply_posthoc(
    name: str, cfg: Config, outputs_root: Path, splits: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Write ``outputs/<name>/<role>/*.npz`` from ``outputs/base``; return what was fitted."""
    from mistrust.calibration import fit_last_layer_laplace, fit_temperature, scale_logits

    info: dict[str, Any] = {}
    v = cfg.variants
    for role in ROLES:
        base = outputs_root / "base" / role
        dest = outputs_root / name / role
        files = sorted(base.glob("*.npz"))
        t0 = time.perf_counter()
        if name in ("temperature", "temperature-fit"):
            if name == "temperature":
                temp = v.temperature
            else:
                cal = _calibration_set(base, role, splits, name)
                temp = fit_temperature(cal.logits, cal.labels)
            info[role] = {"temperature": float(temp)}
            for f in files:
                out = Outputs.load(f)
                Outputs(scale_logits(out.logits, temp), out.labels).save(dest / f.name)
        elif name == "laplace":
            cal = _calibration_set(base, role, splits, name)
            train = Outputs.load(base / "train.npz")
            noise = Outputs.load(base / "noise.npz")
            lla = fit_last_layer_laplace(
                _head(outputs_root.parent / "models" / "base" / f"{role}.pt"),
                train.features,
                train.labels,
                val_feats=cal.features,
                val_labels=cal.labels,
                ood_feats=noise.features,
                prior=v.laplace_prior,
                grid_size=v.laplace_grid,
                n_samples=v.laplace_samples,
                pred=v.laplace_pred,
                seed=cfg.seed,
            )
            info[role] = {"prior_precision": float(lla.prior_precision_)}
            for f in files:
                out = Outputs.load(f)
                Outputs(lla.predict_logprobs(out.features), out.labels).save(dest / f.name)
        else:
            raise ValueError(f"{name!r} is not a post-hoc variant")
        info[role]["seconds"] = time.perf_counter() - t0
        log.debug("%s/%s: %s", name, role, info[role])
    return info
