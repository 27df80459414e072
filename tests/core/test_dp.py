"""DP-SGD variants: names through the registry, config checks, private training
(deterministic, accounted), Opacus-compatible layers, the canaries and the study job."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from torch import nn

from mistrust.calibration.variants import (
    dp_variant_name,
    expand_names,
    get_variant,
    private_settings,
)
from mistrust.config import ConfigError, DataConfig, ModelConfig, TrainConfig, load_config
from mistrust.data.canaries import draw_canaries
from mistrust.data.images import Preprocess
from mistrust.models import create_model
from mistrust.study.train import fingerprint, load_model, train_or_load
from mistrust.training.private import DPSettings, make_private_compatible, train_private


def test_dp_sgd_expands_into_one_variant_per_epsilon() -> None:
    cfg = load_config(
        "smoke", ["variants.names=[base, dp-sgd, temperature]", "variants.dp_epsilon=[1, 0.5, 8]"]
    )
    assert cfg.variants.names == [
        "base",
        "dp-sgd-eps1",
        "dp-sgd-eps0.5",
        "dp-sgd-eps8",
        "temperature",
    ]
    one = load_config("smoke", ["variants.names=[dp-sgd]", "variants.dp_epsilon=3"])
    assert one.variants.names == ["dp-sgd-eps3"]
    v = cfg.variants
    assert private_settings("dp-sgd-eps0.5", v) == DPSettings(0.5, 1e-5, 1.0)
    assert private_settings("base", v) is None and private_settings("temperature", v) is None
    assert not get_variant("dp-sgd-eps8").posthoc
    # a member named directly needs no dp_epsilon entry, and expanding twice changes nothing
    assert load_config("smoke", ["variants.names=[dp-sgd-eps2]"]).variants.names == ["dp-sgd-eps2"]
    assert expand_names(cfg.variants.names, v) == cfg.variants.names
    assert [dp_variant_name(e) for e in (1.0, 0.25, 1e7)] == [
        "dp-sgd-eps1",
        "dp-sgd-eps0.25",
        "dp-sgd-eps10000000",
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("variants.dp_epsilon=0", r"variants.dp_epsilon must be in \(0, 1000\], got 0.0"),
        ("variants.dp_epsilon=[]", "variants.dp_epsilon is empty"),
        ("variants.dp_epsilon=[8, 8]", "variants.dp_epsilon has duplicates"),
        ("variants.dp_delta=1", r"variants.dp_delta must be in \(0, 1\)"),
        ("variants.dp_max_grad_norm=0", "variants.dp_max_grad_norm must be positive"),
        ("canaries.count=-1", "canaries.count must be >= 0"),
        ("variants.names=[dp-sgd-epsx]", "unknown variant 'dp-sgd-epsx'"),
        ("variants.names=[dp-sgd-eps0]", r"dp-sgd-eps0: the target epsilon must be in \(0, 1000\]"),
    ],
)
def test_bad_dp_settings_are_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load_config("smoke", [override])
    assert "\n" not in str(err.value)


def test_a_member_named_twice_is_run_once() -> None:
    cfg = load_config("smoke", ["variants.names=[dp-sgd-eps8, dp-sgd]", "variants.dp_epsilon=8"])
    assert cfg.variants.names == ["dp-sgd-eps8"]


def _tiny(n: int = 192, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, Preprocess]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 12, 12), dtype=torch.uint8, generator=g)
    labels = (images.float().mean((1, 2, 3)) > 127.5).long()  # learnable from the pixels
    return images, labels, Preprocess(1, 12, (0.5,), (0.5,))


def _weights(model: nn.Module) -> bytes:
    return b"".join(t.numpy().tobytes() for t in model.state_dict().values())


def test_private_training_is_seeded_and_spends_the_target_epsilon() -> None:
    images, labels, pre = _tiny()
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.01)
    dp = DPSettings(4.0, 1e-5, 1.0)
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        model = create_model("mlp", channels=1, num_classes=2, size=12, width=16)
        hist, acc = train_private(model, images, labels, pre, cfg, dp, seed=3)
        runs.append((_weights(model), acc))
    assert runs[0][0] == runs[1][0]  # same seed, same bytes: sampling and noise are seeded
    acc = runs[0][1]
    assert 0.9 * dp.epsilon <= acc["dp_epsilon"] <= dp.epsilon  # the accountant's, spent
    assert acc["dp_delta"] == 1e-5 and acc["dp_noise_multiplier"] > 0.5
    assert acc["dp_sample_rate"] == pytest.approx(32 / 192) and acc["accountant"] == "rdp"
    assert len(hist.loss) == 2 and not model.training
    torch.manual_seed(3)
    other = create_model("mlp", channels=1, num_classes=2, size=12, width=16)
    train_private(other, images, labels, pre, cfg, dp, seed=4)
    assert _weights(other) != runs[0][0]


def test_batchnorm_becomes_groupnorm() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    fixed = make_private_compatible(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fixed.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in fixed.modules())
    plain = nn.Sequential(nn.Linear(2, 2))
    assert make_private_compatible(plain) is plain


def test_a_private_batchnorm_model_is_reused_and_reloaded(tmp_path) -> None:
    from mistrust.data.images import ImageSet

    g = torch.Generator().manual_seed(0)
    train = ImageSet(
        torch.randint(0, 256, (48, 3, 16, 16), dtype=torch.uint8, generator=g),
        torch.randint(0, 3, (48,), generator=g),
    )
    pre = Preprocess(3, 16, (0.5,) * 3, (0.5,) * 3)
    mcfg = ModelConfig(arch="resnet18-cifar", width=4)
    kw = dict(
        role="target",
        train_set=train,
        preprocess=pre,
        num_classes=3,
        model_path=tmp_path / "t.pt",
        seed=1,
        device=torch.device("cpu"),
        progress=False,
        private=DPSettings(4.0, 1e-5, 1.0),  # the rate and epochs above: one noise search
        privacy_path=tmp_path / "t.dp.json",
    )
    tcfg = TrainConfig(epochs=2, batch_size=8)
    model, meta, fresh = train_or_load(DataConfig(), mcfg, tcfg, **kw)
    assert fresh and meta["dp"]["dp_epsilon"] <= 4.0 and (tmp_path / "t.dp.json").is_file()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    again, _, fresh = train_or_load(DataConfig(), mcfg, tcfg, **kw)
    assert not fresh and _weights(again) == _weights(model)
    loaded, _ = load_model(tmp_path / "t.pt", mcfg)
    x = pre(train.images[:4])
    assert torch.equal(loaded(x), model(x))


def test_fingerprint_changes_only_with_extra() -> None:
    d, m, t = DataConfig(), ModelConfig(), TrainConfig()
    assert fingerprint(d, m, t, "target", 1) == fingerprint(d, m, t, "target", 1, None)
    assert fingerprint(d, m, t, "target", 1) != fingerprint(d, m, t, "target", 1, {"x": 1})


def test_canaries_are_unused_wrongly_labelled_and_in_by_a_fair_coin() -> None:
    labels = np.arange(5000) % 10
    used = np.arange(0, 5000, 3)
    c = draw_canaries(labels, used, 1000, 10, seed=5)
    assert len(c.index) == 1000 and len(set(c.index)) == 1000
    assert not np.isin(c.index, used).any()
    assert (c.label != labels[c.index]).all() and ((c.label >= 0) & (c.label < 10)).all()
    assert 430 < c.included.sum() < 570  # Binomial(1000, 1/2): 6 sd either side
    again = draw_canaries(labels, used, 1000, 10, seed=5)
    assert all(np.array_equal(c.arrays()[k], again.arrays()[k]) for k in c.arrays())
    with pytest.raises(ValueError, match="exceeds the 2"):
        draw_canaries(labels[:5], np.arange(3), 3, 10, seed=0)


def test_study_job_trains_privately_with_canaries_and_pickles(tmp_path) -> None:
    from mistrust.study.data import load_data
    from mistrust.study.run import _study_job

    cfg = load_config(
        "smoke",
        ["variants.names=[base, dp-sgd]", "variants.dp_epsilon=[2]", "canaries.count=40"],
    )
    job = _study_job(
        cfg, load_data(cfg.data, seed=cfg.seed), {}, tmp_path, torch.device("cpu"), False
    )
    assert list(job.train) == ["base", "dp-sgd-eps2"]
    assert job.privacy == {"dp-sgd-eps2": DPSettings(2.0, 1e-5, 1.0)}
    x, y = job.sets["canaries"]
    assert len(x) == len(y) == 40 and 0 < len(job.canaries) < 40
    back = pickle.loads(pickle.dumps(job))
    assert back.privacy == job.privacy and torch.equal(back.canaries.images, job.canaries.images)
    with pytest.raises(ConfigError, match="another name"):
        load_config(
            "smoke",
            ["canaries.count=4", "eval.folders={canaries: x}", "eval.sets=[original, canaries]"],
        )
