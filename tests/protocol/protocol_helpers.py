"""Helpers of the protocol tests: the shared run's config and its recorders.

One small run of the whole pipeline, with recorders on the protocol's seams.

The run (digits, a tiny MLP, one epoch, every kind of evaluation set, two
variants, score-based and reference attacks, the report) takes about half a
minute and is shared by every test marked ``pipeline``. Recorders wrap, never
replace, the functions they watch, so the run's numbers are the real ones:

* ``recording``: a max-score threshold attack registered for the run that keeps
  what ``fit`` and ``score`` were given;
* the GAN's training images; the reference models' training sets; the masks and
  labels handed to LiRA and RMIA.

The tests compare what was recorded with expectations computed directly from
the raw images and the documented protocol, never with the pipeline's own
intermediate results.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mistrust.attacks.score_based import ThresholdAttack

SETS = ["original", "permuted", "scaled", "unnormalized", "noise", "gan", "held-out"]
VARIANTS = ["base", "temperature-fit"]
ATTACKS = ["threshold", "loss", "recording"]
REFERENCE = ["lira-online", "lira-offline", "rmia-online", "rmia-offline"]
HELD_OUT_CLASS = 9
N_MODELS = 4

OVERRIDES = [
    "model.arch=mlp",
    "model.width=16",
    "train.epochs=8",
    "train.lr=0.01",
    "data.train_size=80",
    "data.test_size=80",
    "data.members=40",
    "data.nonmembers=40",
    f"data.held_out_classes=[{HELD_OUT_CLASS}]",
    f"eval.sets=[{', '.join(SETS)}]",
    "eval.gan_images=100",
    "eval.gan_epochs=1",
    f"variants.names=[{', '.join(VARIANTS)}]",
    f"attacks.names=[{', '.join(ATTACKS)}]",
    f"reference.n_models={N_MODELS}",
    "reference.z_size=20",
    f"reference.attacks=[{', '.join(REFERENCE)}]",
    "device=cpu",
]


class RecordingAttack(ThresholdAttack):
    """The max-score threshold attack, keeping a copy of every input it is given."""

    calls: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]] = []

    def __init__(self) -> None:
        super().__init__("threshold")  # the max-score signal

    # the audit hands every attack a set's shared signals; fit and score come here too
    def fit_signals(self, signals, is_member):  # noqa: ANN001 - the Attack signature
        rec = ("fit", np.array(signals.logits), np.array(signals.labels), np.array(is_member))
        self.calls.append(rec)
        return super().fit_signals(signals, is_member)

    def score_signals(self, signals):  # noqa: ANN001
        self.calls.append(("score", np.array(signals.logits), np.array(signals.labels), None))
        return super().score_signals(signals)


@dataclass
class Recorded:
    """What the recorders saw during the shared run."""

    gan_images: list[torch.Tensor] = field(default_factory=list)
    reference_train: dict[int, torch.Tensor] = field(default_factory=dict)
    # (attack, dataset, function, kwargs) for calls made while scoring a set
    reference_calls: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    signal_keys: dict[str, np.ndarray] = field(default_factory=dict)
    attack_calls: list = field(default_factory=list)


@dataclass
class PipelineRun:
    cfg: Any
    run_dir: Path
    result: Any
    rec: Recorded


def install_recorders(mp: pytest.MonkeyPatch, rec: Recorded) -> None:
    import mistrust.attacks.reference.lira as lira
    import mistrust.attacks.reference.rmia as rmia
    import mistrust.data.gan as gan
    import mistrust.pipeline.reference as reference
    import mistrust.study.train as modeling
    from mistrust.attacks import registry

    RecordingAttack.calls = rec.attack_calls
    mp.setitem(registry._REGISTRY, "recording", RecordingAttack)
    # the recorders live in this process: every task runs here (no worker processes, no
    # GAN beside the models), as on a one-core machine
    mp.setattr("mistrust.runtime.executors.usable_cpus", lambda: 1)
    mp.setattr("mistrust.study.run.usable_cpus", lambda: 1)

    real_gan = gan.load_or_train_gan

    @functools.wraps(real_gan)
    def gan_spy(images, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        rec.gan_images.append(images.clone())
        return real_gan(images, *args, **kwargs)

    mp.setattr(gan, "load_or_train_gan", gan_spy)

    real_train = modeling.train_or_load

    @functools.wraps(real_train)
    def train_spy(*args, **kwargs):  # noqa: ANN002, ANN003
        role = kwargs["role"]
        if role.startswith("reference-"):
            rec.reference_train[int(role.split("-")[1])] = kwargs["train_set"].images.clone()
        return real_train(*args, **kwargs)

    mp.setattr(modeling, "train_or_load", train_spy)

    context: list[tuple[str, str]] = []
    real_set_rows = reference._set_rows

    def set_rows_spy(name, ds, **kwargs):  # noqa: ANN001, ANN003
        context.append((name, ds))  # the configured attack, whatever it runs as
        try:
            return real_set_rows(name, ds, **kwargs)
        finally:
            context.pop()

    mp.setattr(reference, "_set_rows", set_rows_spy)

    def spy(name: str, real):  # noqa: ANN001, ANN202
        @functools.wraps(real)
        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003
            if context:
                a, ds = context[-1]
                rec.reference_calls.append(
                    (a, ds, name, {"args": [np.array(x) for x in args], **kwargs})
                )
            return real(*args, **kwargs)

        return wrapper

    for module, name in ((lira, "lira_online"), (lira, "lira_offline"), (rmia, "rmia_prior")):
        mp.setattr(module, name, spy(name, getattr(module, name)))

    real_load = reference.read_signals

    def load_spy(ref_logits, n_models, keys, *args):  # noqa: ANN001, ANN002
        rec.signal_keys.update({k: np.array(v) for k, v in keys.items()})
        return real_load(ref_logits, n_models, keys, *args)

    mp.setattr(reference, "read_signals", load_spy)


def run_model(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Logits ``(N, C)`` float32 of ``model`` on float inputs ``x``."""
    model.eval()
    with torch.inference_mode():
        return model(x).float().numpy()
