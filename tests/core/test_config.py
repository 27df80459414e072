from __future__ import annotations

import pytest
import yaml

from mistrust.config import ConfigError, load_config, parse_override, preset_names


def test_every_preset_loads_and_validates() -> None:
    names = preset_names()
    assert {
        "smoke",
        "default",
        "paper-cifar10-resnet18",
        "paper-cifar10-efficientnet",
        "paper-cifar10-salemcnn",
        "paper-stanford-dogs-resnet50",
    } <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.name == name


def test_paper_hyperparameters() -> None:
    cfg = load_config("paper-cifar10-resnet18")
    assert (cfg.data.train_size, cfg.data.test_size, cfg.data.members) == (12500, 5000, 2500)
    assert cfg.data.stratified_pool == 25000
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.epochs) == (0.01, 64, 100)
    assert cfg.variants.label_smoothing == 0.0083 and cfg.variants.weight_decay == 3e-4
    dogs = load_config("paper-stanford-dogs-resnet50")
    assert (dogs.data.train_size, dogs.data.test_size, dogs.data.members) == (8232, 2058, 2058)
    assert dogs.variants.label_smoothing == 0.1 and dogs.variants.weight_decay == 1e-3
    assert load_config("paper-cifar10-salemcnn").train.lr == 0.001


def test_salem_trains_on_every_shadow_row_of_the_default_preset() -> None:
    """The default's 500 + 500 shadow rows are below ``attacks.salem_rows``, so its
    Salem rows are the paper recipe's; a larger shadow set is sampled down to it."""
    from mistrust.attacks.salem import FIT_ROWS

    cfg = load_config("default")
    assert cfg.attacks.salem_rows == FIT_ROWS == 16_384
    assert cfg.data.members + cfg.data.nonmembers <= cfg.attacks.salem_rows
    assert load_config("smoke", ["attacks.salem_rows=null"]).attacks.salem_rows is None


def test_overrides_apply_with_types() -> None:
    cfg = load_config("smoke", ["train.epochs=7", "train.lr=1e-2", "eval.sets=[original]"])
    assert cfg.train.epochs == 7 and cfg.train.lr == 0.01 and cfg.eval.sets == ["original"]
    assert parse_override("a.b=3") == {"a": {"b": 3}}


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epoch=3", "unknown key train.epoch"),
        ("bogus=1", "unknown key bogus"),
        ("train.epochs=three", "train.epochs: expected an integer"),
        ("train.epochs=-1", "train.epochs must be positive"),
        ("data.members=100000", "cannot exceed data.train_size"),
        ("model.arch=vgg", "unknown model 'vgg'"),
        ("data.dataset=imagenet", "unknown dataset 'imagenet'"),
        ("attacks.names=[nope]", "unknown attack 'nope'"),
        ("variants.names=[nope]", "unknown variant 'nope'"),
        ("eval.sets=[nope]", "unknown evaluation set 'nope'"),
        ("train.label_smoothing=1.5", "label_smoothing"),
        ("device=tpu", "device must be"),
        ("executor=dask", "executor must be local or ray, got 'dask'"),
        ("attacks.salem_rows=0", "attacks.salem_rows must be at least 2, or null"),
        ("attacks.salem_rows=many", "attacks.salem_rows: expected an integer"),
    ],
)
def test_bad_values_fail_clearly(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config("smoke", [override])


def test_executor_is_study_wide_and_the_old_reference_key_folds_in(caplog) -> None:
    assert load_config("smoke").executor == "local"
    assert load_config("smoke", ["executor=ray"]).executor == "ray"
    with caplog.at_level("WARNING", logger="mistrust.config"):
        cfg = load_config("smoke", ["reference.executor=ray", "reference.ray_address=auto"])
    assert (cfg.executor, cfg.ray_address) == ("ray", "auto")
    assert "write 'executor: ray' at the top level" in caplog.text
    assert "executor" not in cfg.to_dict()["reference"]
    # the same value twice is harmless; two different ones are refused with the fix
    assert load_config("smoke", ["executor=ray", "reference.executor=ray"]).executor == "ray"
    with pytest.raises(ConfigError, match="set only the top-level executor"):
        load_config("smoke", ["executor=local", "reference.executor=ray"])


def test_user_file_on_top_of_preset(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"preset": "smoke", "train": {"epochs": 1}}))
    cfg = load_config(str(path))
    assert cfg.train.epochs == 1 and cfg.data.dataset == "digits"
    (tmp_path / "bad.yaml").write_text("train: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(tmp_path / "bad.yaml"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.pretrained=true"], "model.pretrained: salem-cnn has no pretrained weights"),
        (["model.arch=efficientnet-b0-cifar", "model.width=8"], "has a fixed width"),
    ],
)
def test_model_options_the_architecture_lacks(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("smoke", overrides)
    ok = ["model.arch=resnet18", "model.width=null", "model.pretrained=true"]
    assert load_config("smoke", ok).model.pretrained


@pytest.mark.parametrize(
    "key, owner, name",
    [
        ("data.augment", "mistrust.training", "AUGMENTS"),
        ("data.fit", "mistrust.data.folders", "FITS"),
        ("train.optimizer", "mistrust.training", "OPTIMIZERS"),
        ("executor", "mistrust.runtime.devices", "EXECUTORS"),
        ("attacks.score_precision", "mistrust.attacks.signals", "PRECISIONS"),
        ("attacks.salem_score", "mistrust.attacks.salem", "OUTPUTS"),
        ("eval.ood_split", "mistrust.data.sources", "SPLITS"),
        ("variants.laplace_prior", "mistrust.calibration.laplace", "PRIORS"),
        ("variants.laplace_pred", "mistrust.calibration.laplace", "PREDS"),
        ("variants.calibration_set", "mistrust.calibration.variants", "CALIBRATION_SETS"),
    ],
)
def test_allowed_values_are_read_from_their_owner(monkeypatch, key, owner, name) -> None:
    import importlib

    module = importlib.import_module(owner)
    with pytest.raises(ConfigError, match=f"{key} must be .* or .*, got 'zz'"):
        load_config("smoke", [f"{key}=zz"])
    monkeypatch.setattr(module, name, (*getattr(module, name), "zz"))
    cfg = load_config("smoke", [f"{key}=zz"])  # the owner's list is the only list
    section, _, field = key.rpartition(".")
    assert getattr(getattr(cfg, section) if section else cfg, field) == "zz"


def test_laplace_methods_and_aupr_choices_are_their_registries() -> None:
    from mistrust.calibration.variants import LAPLACE_METHODS
    from mistrust.metrics.rates import AUPR_METHODS

    for key, registry in (
        ("variants.laplace_method", LAPLACE_METHODS),
        ("attacks.aupr", AUPR_METHODS),
    ):
        for value in registry:
            load_config("smoke", [f"{key}={value}"])
        with pytest.raises(ConfigError, match=" or ".join(registry)):
            load_config("smoke", [f"{key}=zz"])
