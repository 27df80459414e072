"""Post-hoc variants: transform the base models' cached outputs, role by role.

Each role is calibrated with its own data, so the shadow mirrors the target
exactly: ``variants.calibration_set: held-out`` uses the part of the role's
test split that the attacks never score; ``nonmembers`` uses the role's attack
non-members, as the paper did (its Stanford Dogs splits leave no other test
data). Fitting a temperature or a Laplace prior on the non-members the attack
is then measured on lets the calibration see them; that is the paper's
protocol, reproduced by its presets.

What a variant fits and how it maps outputs is its registered step
(:mod:`mistrust.calibration.variants`); this stage only feeds each role's base to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mistrust.calibration.variants import BASE, VariantSettings, get_variant
from mistrust.core.outputs import Outputs
from mistrust.data.splits import ROLES, positions
from mistrust.errors import ConfigError, InputError
from mistrust.runtime.executors import Background
from mistrust.runtime.paths import RunPaths
from mistrust.training import OPTIMIZER_IMPORTS

log = logging.getLogger(__name__)


def _calibration_set(
    test: Path, role: str, splits: dict[str, np.ndarray], what: str, source: str
) -> Outputs:
    """The rows of ``role``'s cached test-split outputs (the file ``test``) it calibrates on."""
    part = "nonmembers" if source == "nonmembers" else "calibration"
    index = positions(splits[f"{role}_test"], splits[f"{role}_{part}"])
    if len(index) == 0:
        raise ConfigError(
            f"variant {what} needs held-out data: make data.test_size larger than data.nonmembers"
            ", or set variants.calibration_set: nonmembers"
        )
    return Outputs.load(test).subset(index)


def _head(model_path: Path) -> torch.nn.Linear:
    state = torch.load(model_path, map_location="cpu", weights_only=True)["state_dict"]
    weight, bias = state["head.weight"], state["head.bias"]
    head = torch.nn.Linear(weight.shape[1], weight.shape[0])
    head.load_state_dict({"weight": weight, "bias": bias})
    return head


class _RoleBase:
    """One role's base model and outputs, each read on first use (:class:`RoleBase`)."""

    def __init__(
        self,
        paths: RunPaths,
        role: str,
        splits: dict[str, np.ndarray],
        variant: str,
        source: str,
    ) -> None:
        self.paths = paths
        self.role, self.splits, self.variant, self.source = role, splits, variant, source

    def _file(self, dataset: str) -> Path:
        return self.paths.outputs(BASE, self.role, dataset)

    def head(self) -> torch.nn.Linear:
        return _head(self.paths.model(BASE, self.role))

    def train(self) -> Outputs:
        return Outputs.load(self._file("train"))

    def calibration(self) -> Outputs:
        return _calibration_set(
            self._file("test"), self.role, self.splits, self.variant, self.source
        )

    def noise(self) -> Outputs:
        return Outputs.load(self._file("noise"))


def apply_posthoc(
    name: str,
    vcfg: VariantSettings,
    paths: RunPaths,
    splits: dict[str, np.ndarray],
    *,
    seed: int,
    batch_size: int,
    roles: Sequence[str] = ROLES,
) -> dict[str, Any]:
    """Write ``outputs/<name>/<role>/*.npz`` from ``outputs/base``; return what was fitted.

    ``paths``: the run directory, whose base models' heads and outputs are read; ``vcfg``: the ``variants`` settings; ``seed`` seeds the fits (Monte-Carlo draws);
    ``batch_size``: the training batch size (the paper's Laplace loaders use twice it).
    """
    variant = get_variant(name)
    if not variant.posthoc:
        raise ValueError(f"{name!r} is not a post-hoc variant")
    info: dict[str, Any] = {}
    for role in roles:
        base = _RoleBase(paths, role, splits, name, vcfg.calibration_set)
        files = sorted(paths.role_outputs(BASE, role).glob("*.npz"))
        t0 = time.perf_counter()
        step = variant.step(vcfg, seed=seed, batch_size=batch_size).fit(base)
        info[role] = step.fitted()
        for f in files:
            out = Outputs.load(f)
            Outputs(step.transform(out), out.labels).save(paths.outputs(name, role, f.stem))
        info[role]["seconds"] = time.perf_counter() - t0
        log.debug("%s/%s: %s", name, role, info[role])
    return info


def check_labels(paths: RunPaths, roles: Sequence[str], name: str) -> None:
    """Refuse the post-hoc variant ``name`` where a role's cached base outputs lack the
    labels its fit reads (:attr:`~mistrust.calibration.variants.PosthocVariant.labelled_splits`):
    an audit's unlabelled images."""
    for split in get_variant(name).labelled_splits:
        for role in roles:
            with np.load(paths.outputs(BASE, role, split), allow_pickle=False) as f:
                labels = f["labels"]  # the labels alone, not the features beside them
            if (labels < 0).any():
                raise InputError(
                    f"variants.names: {name} fits on labelled data, but {role}'s "
                    f"{'non-members' if split == 'test' else 'members'} have no labels; "
                    "give labels or leave the variant out"
                )


def _apply_all(names: list[str], **kw: Any) -> dict[str, dict[str, Any]]:
    return {n: apply_posthoc(n, **kw) for n in names}


def start_posthoc(
    names: list[str],
    vcfg: VariantSettings,
    paths: RunPaths,
    splits: dict[str, np.ndarray],
    *,
    seed: int,
    batch_size: int,
    roles: Sequence[str] = ROLES,
    here: bool = False,
) -> Background:
    """:func:`apply_posthoc` of every variant in ``names``, in a process that starts now.

    The attacks on the trained variants need none of it, so they run meanwhile (on the
    default preset the Laplace fits and their library's import take as long as those
    attacks). ``result()`` gives ``{name: fitted}``. The fits run with one torch thread,
    so their numbers do not depend on the machine's core count, as the models' do not.
    ``here=True`` fits them in this process at once (a run on a GPU: no fork).
    """
    fits = partial(
        _apply_all,
        vcfg=vcfg,
        paths=paths,
        splits=splits,
        seed=seed,
        batch_size=batch_size,
        roles=tuple(roles),
    )
    return Background(fits, names, threads=1, here=here, inherit=OPTIMIZER_IMPORTS)
