"""Each section checks its own keys (``validate()`` beside its dataclass): a bad value of a
section fails there alone, with the same one line as the whole config's ``validate``."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest

from mistrust.config import Config, ConfigError, validate

#: (section, its changed fields, the message); "" is the top level, a message that ends
#: in "..." is the start of one (the rest lists choices kept elsewhere)
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("", {"name": "Bad/Name"}, "name: 'Bad/Name' is not a valid name (it becomes a file name in the run directory); use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit"),
    ("", {"executor": "zz"}, "executor must be local or ray, got 'zz'"),
    ("", {"device": "tpu"}, "device must be cpu, cuda, mps or auto, got 'tpu'"),
    ("", {"seed": -1}, "seed must be an integer in [0, 2^31), got -1"),
    ("", {"seeds": 0}, "seeds must be a positive integer, got 0"),
    ("", {"seed": 2**31 - 1, "seeds": 2}, "seeds: seed + seeds - 1 = 2147483648 must be below 2^31; lower seeds or seed"),
    ("data", {"augment": "zz"}, "data.augment must be none, flip-crop or rotate-crop-flip, got 'zz'"),
    ("data", {"dataset": "nope"}, "data.dataset: unknown dataset 'nope'; choose from ..."),
    ("data", {"train_size": 0}, "data.train_size must be positive, got 0"),
    ("data", {"members": 5000}, "data.members (5000) cannot exceed data.train_size (2000)"),
    ("data", {"nonmembers": 5000}, "data.nonmembers (5000) cannot exceed data.test_size (2000)"),
    ("data", {"load_size": 40}, "data.load_size (40) needs data.image_size set and at most data.load_size (images are kept at load_size and cropped to image_size)"),
    ("data", {"image_size": 0}, "data.image_size must be positive"),
    ("model", {"width": 0}, "model.width must be positive"),
    ("model", {"arch": "nope"}, "model.arch: unknown model 'nope'; choose from ..."),
    ("model", {"pretrained": True}, "model.pretrained: salem-cnn has no pretrained weights; set model.pretrained: false or choose model.arch from ..."),
    ("model", {"arch": "efficientnet-b0-cifar", "width": 8}, "model.width: 'efficientnet-b0-cifar' has a fixed width; leave model.width unset"),
    ("train", {"optimizer": "zz"}, "train.optimizer must be adam or sgd, got 'zz'"),
    ("train", {"lr": 0.0}, "train.lr must be positive, got 0.0"),
    ("train", {"lr": math.nan}, "train.lr must be a finite number, got nan"),
    ("train", {"epochs": 0}, "train.epochs must be positive, got 0"),
    ("train", {"label_smoothing": 1.0}, "train.label_smoothing must be in [0, 1), got 1.0"),
    ("train", {"eval_batch_size": 0}, "train.eval_batch_size must be positive, got 0"),
    ("train", {"momentum": -1.0}, "train.momentum must be >= 0, got -1.0"),
    ("variants", {"names": ["base", "base"]}, "variants.names has duplicates (base); list each name once"),
    ("variants", {"names": ["nope"]}, "variants.names: unknown variant 'nope'; choose from ..."),
    ("variants", {"names": []}, "variants.names is empty; name at least one"),
    ("variants", {"temperature": 0.0}, "variants.temperature must be positive"),
    ("variants", {"laplace_prior": "zz"}, "variants.laplace_prior must be grid or marglik, got 'zz'"),
    ("variants", {"laplace_search_samples": 0}, "variants.laplace_search_samples must be positive"),
    ("variants", {"laplace_method": "paper", "laplace_pred": "probit"}, "variants.laplace_method: paper searches the prior on a grid and predicts by Monte Carlo; set variants.laplace_prior: grid and variants.laplace_pred: mc, or variants.laplace_method: laplace-torch"),
    ("attacks", {"names": ["Loss"]}, "attacks.names: 'Loss' is not a valid name (it becomes a file name in the run directory); use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit"),
    ("attacks", {"names": ["nope"]}, "attacks.names: unknown attack 'nope'; choose from ..."),
    ("attacks", {"names": []}, "attacks.names is empty; name at least one"),
    ("attacks", {"top_k": 0}, "attacks.top_k must be positive, got 0"),
    ("attacks", {"salem_rows": 1}, "attacks.salem_rows must be at least 2, or null for every shadow row, got 1"),
    ("attacks", {"salem_score": "zz"}, "attacks.salem_score must be logit or sigmoid, got 'zz'"),
    ("attacks", {"aupr": "zz"}, "attacks.aupr must be average-precision or trapezoid, got 'zz'"),
    ("eval", {"sets": ["nope"]}, "eval.sets: unknown evaluation set 'nope'; choose from ..."),
    ("eval", {"sets": []}, "eval.sets is empty; name at least one"),
    ("eval", {"folders": {"permuted": "/x"}}, "eval.folders: 'permuted' is a built-in evaluation set; give the folder another name"),
    ("eval", {"iid_sets": ["gan"]}, "eval.iid_sets: 'gan' is not in eval.sets; declare only sets that are scored"),
    ("eval", {"full_sets": ["permuted"]}, "eval.full_sets: 'permuted' is not a dataset; only sets drawn from datasets or folders can be used whole (..."),
    ("eval", {"scale_factor": math.inf}, "eval.scale_factor must be a finite number, got inf"),
    ("eval", {"gallery_size": -1}, "eval.gallery_size must be >= 0, got -1"),
    ("eval", {"ood_split": "zz"}, "eval.ood_split must be train or test, got 'zz'"),
    ("reference", {"attacks": ["lira"]}, "reference.attacks: unknown attack 'lira'; choose from ..."),
    ("reference", {"attacks": ["lira-online"], "n_models": 1}, "reference.n_models must be at least 2, got 1"),
    ("reference", {"z_size": 0}, "reference.z_size must be positive"),
    ("reference", {"n_models": 5000}, "reference.n_models must be at most 4096, got 5000"),
]  # fmt: skip


def _bad(section: str, fields: dict[str, Any]) -> Config:
    cfg = Config()
    if not section:
        return dataclasses.replace(cfg, **fields)
    return dataclasses.replace(
        cfg, **{section: dataclasses.replace(getattr(cfg, section), **fields)}
    )


def _ids() -> list[str]:
    return [f"{s or 'top'}-{'-'.join(f)}" for s, f, _ in CASES]


def test_the_defaults_pass_every_section() -> None:
    cfg = Config()
    cfg.validate()
    for section in cfg.sections():
        section.validate()
    validate(cfg)


@pytest.mark.parametrize("section, fields, message", CASES, ids=_ids())
def test_a_section_fails_alone_with_the_message_of_the_whole_config(
    section: str, fields: dict[str, Any], message: str
) -> None:
    cfg = _bad(section, fields)
    match = re.escape(message.removesuffix("...")) + ("" if message.endswith("...") else "$")
    with pytest.raises(ConfigError, match=f"^{match}"):
        validate(cfg)
    with pytest.raises(ConfigError, match=f"^{match}"):
        (getattr(cfg, section) if section else cfg).validate()
    # and no other section objects to it
    for other in cfg.sections():
        if other is not getattr(cfg, section, None):
            other.validate()


@pytest.mark.parametrize(
    "section, fields, message",
    [
        ("data", {"held_out_classes": [12]}, "data.held_out_classes: class 12 does not exist (fashion-mnist has classes 0..9)"),
        ("attacks", {"top_k": 11}, "attacks.top_k (11) exceeds the 10 classes the model has"),
    ],
)  # fmt: skip
def test_checks_between_sections_run_after_each_section(
    section: str, fields: dict[str, Any], message: str
) -> None:
    cfg = _bad(section, fields)
    getattr(cfg, section).validate()  # each key alone is fine ...
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        validate(cfg)  # ... against the dataset's classes it is not
