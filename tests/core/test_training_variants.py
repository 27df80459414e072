"""Each training-time variant trains with what it claims, checked from the config down to
the saved weights: a variant's model is trained by the study task
(:func:`mistrust.study.models.train_study_model`) for one step on one batch, and its loss
and updated weights are recomputed here by hand from the same initial weights.

The loss is label-smoothed cross-entropy written out (``(1 - eps)`` on the true class plus
``eps / C`` on every class), the step is the closed form of the optimiser's first step with
weight decay as an L2 term in the gradient (SGD: ``p - lr (g + wd p)``; Adam:
``p - lr g' / (|g'| + 1e-8)`` with ``g' = g + wd p``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mistrust.calibration.variants import TrainingVariant, get_variant, variant_names
from mistrust.config import load_config
from mistrust.models import create_model
from mistrust.training import make_optimizer

SMOOTHING, DECAY = 0.3, 0.5
#: training-time variant -> (label smoothing, weight decay) it must train with, given the
#: run's train settings (both 0) and ``variants.label_smoothing`` / ``weight_decay`` above
EXPECTED = {"base": (0.0, 0.0), "label-smoothing": (SMOOTHING, 0.0), "weight-decay": (0.0, DECAY)}
LR = 0.05
ADAM_EPS = 1e-8  # torch.optim.Adam's default


def test_every_training_variant_is_checked_here() -> None:
    trained = [n for n in variant_names() if isinstance(get_variant(n), TrainingVariant)]
    assert sorted(trained) == sorted(EXPECTED), "add the new variant's settings to EXPECTED"


def _config(optimizer: str, *overrides: str):
    return load_config(
        "smoke",
        [
            "model.arch=mlp",
            "model.width=8",
            "data.image_size=8",
            "data.train_size=24",
            "data.test_size=24",
            "data.members=24",
            "data.nonmembers=24",
            f"train.optimizer={optimizer}",
            f"train.lr={LR}",
            f"variants.names=[{', '.join(EXPECTED)}]",
            f"variants.label_smoothing={SMOOTHING}",
            f"variants.weight_decay={DECAY}",
            "eval.sets=[original]",
            "device=cpu",
            *overrides,
        ],
    )


def _job(cfg, tmp_path):
    from mistrust.runtime.paths import RunPaths
    from mistrust.study.data import load_data
    from mistrust.study.run import _study_job

    return _study_job(
        cfg, load_data(cfg.data, seed=cfg.seed), {}, RunPaths(tmp_path), torch.device("cpu"), False
    )


def _smoothed_ce(logits: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    logp = logits.log_softmax(1)
    target = torch.full_like(logp, eps / logits.shape[1])
    target[torch.arange(len(y)), y] += 1 - eps
    return -(target * logp).sum(1).mean()


def _first_step(p: torch.Tensor, g: torch.Tensor, optimizer: str, wd: float) -> torch.Tensor:
    g = g + wd * p  # L2: the decay is part of the gradient
    if optimizer == "sgd":  # the first momentum buffer is the gradient itself
        return p - LR * g
    # Adam's first step, bias-corrected: m_hat = g, v_hat = g^2
    return p - LR * g / (g.abs() + ADAM_EPS)


@pytest.fixture(scope="module", params=["sgd", "adam"])
def one_step(request, tmp_path_factory):
    """The study task's models after one step on one batch (24 images, batch of 64)."""
    from mistrust.study.models import train_study_model

    cfg = _config(request.param, "train.epochs=1", "train.batch_size=64")
    job = _job(cfg, tmp_path_factory.mktemp(request.param))
    for name in EXPECTED:
        train_study_model(job, (name, "target"))
    return request.param, cfg, job


@pytest.mark.parametrize("name", list(EXPECTED))
def test_variant_trains_with_its_loss_and_decay(one_step, name: str) -> None:
    from mistrust.study.train import load_model

    optimizer, cfg, job = one_step
    eps, wd = EXPECTED[name]
    seed = job.seed  # the target's
    torch.manual_seed(seed)  # as the task seeds the model's initial weights
    start = create_model(
        "mlp", channels=1, num_classes=job.num_classes, size=8, width=cfg.model.width
    )
    split = job.splits["target_train"]
    x, y = job.preprocess(split.images), split.labels
    params = dict(start.named_parameters())
    logits = start(x)
    loss = _smoothed_ce(logits, y, eps)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y, label_smoothing=eps))
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))

    trained, meta = load_model(job.paths.model(name, "target"), cfg.model)
    # the loss the step minimised (one batch: the epoch's mean is that batch's loss)
    assert meta["loss"] == pytest.approx([loss.item()], rel=1e-5)
    got = dict(trained.named_parameters())
    for key, p in params.items():
        want = _first_step(p.detach(), grads[key], optimizer, wd)
        torch.testing.assert_close(got[key].detach(), want, rtol=1e-5, atol=1e-6, msg=key)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_weight_decay_is_the_configured_l2_term(optimizer: str) -> None:
    """With a zero gradient, a step is the decay alone: SGD ``p (1 - lr wd)``; Adam with
    L2 in the gradient ``p - lr wd p / (wd |p| + eps)`` (not AdamW's ``p (1 - lr wd)``)."""
    cfg = _config(optimizer)
    tcfg = get_variant("weight-decay").train_config(cfg.train, cfg.variants)
    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.25, 2.0], [-1.0, 1e-3, 0.0]]))
        layer.bias.copy_(torch.tensor([0.1, -0.1]))
    before = [p.detach().clone() for p in layer.parameters()]
    opt = make_optimizer(layer, tcfg)
    assert [g["weight_decay"] for g in opt.param_groups] == [DECAY]
    for p in layer.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for p0, p1 in zip(before, layer.parameters(), strict=True):
        if optimizer == "sgd":
            want = p0 * (1 - LR * DECAY)
        else:
            want = p0 - LR * DECAY * p0 / (DECAY * p0.abs() + ADAM_EPS)
        torch.testing.assert_close(p1.detach(), want, rtol=1e-6, atol=1e-7)
    assert layer.weight[1, 2] == 0.0  # a zero weight stays zero


def test_weight_decay_variant_ends_with_smaller_weights_than_base(tmp_path) -> None:
    from mistrust.study.models import train_study_model
    from mistrust.study.train import load_model

    cfg = _config("adam", "train.epochs=6", "train.batch_size=8", "train.lr=0.01")
    job = _job(cfg, tmp_path)
    norms = {}
    for name in ("base", "weight-decay"):
        train_study_model(job, (name, "target"))
        model, _ = load_model(job.paths.model(name, "target"), cfg.model)
        norms[name] = torch.cat([p.detach().flatten() for p in model.parameters()]).norm()
    assert norms["weight-decay"] < 0.9 * norms["base"], norms
