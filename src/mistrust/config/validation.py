"""Every range, name and choice check of a config (``validate``), with one-line errors."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

from mistrust.config.sections import Config
from mistrust.errors import ConfigError


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


#: more reference models than any published attack uses (LiRA: 256); the keep matrix grows with it
MAX_REFERENCE_MODELS = 4096

#: names that become file or folder names in a run directory (sets, variants, attacks)
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def check_name(name: str, key: str) -> None:
    """Raise ``ConfigError`` unless ``name`` is safe as one path component of a run directory.

    Lowercase letters, digits, ``_``, ``.`` and ``-``, starting with a letter or
    digit, no ``..``, at most 64 characters: no ``/``, no absolute path, nothing
    that could leave ``RUN/outputs/<variant>/<role>/``.
    """
    ok = (
        isinstance(name, str)
        and len(name) <= 64
        and NAME_PATTERN.fullmatch(name) is not None
        and ".." not in name
    )
    _check(
        ok,
        f"{key}: {name!r} is not a valid name (it becomes a file name in the run directory); "
        "use lowercase letters, digits, '_', '.' and '-', starting with a letter or digit",
    )


def _finite_floats(obj: Any, prefix: str) -> None:
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            _finite_floats(value, key + ".")
        elif isinstance(value, float):
            _check(math.isfinite(value), f"{key} must be a finite number, got {value}")


def _check_names(cfg: Config) -> None:
    check_name(cfg.name, "name")
    e = cfg.eval
    for key, names in (
        ("eval.sets", e.sets),
        ("eval.folders", list(e.folders)),
        ("variants.names", cfg.variants.names),
        ("attacks.names", cfg.attacks.names),
        ("reference.attacks", cfg.reference.attacks),
    ):
        for name in names:
            check_name(name, key)
        dups = sorted({n for n in names if names.count(n) > 1})
        _check(not dups, f"{key} has duplicates ({', '.join(dups)}); list each name once")


def _check_classes(cfg: Config, num_classes: int) -> None:
    """Class-dependent checks, for datasets whose class count is known before loading."""
    d = cfg.data
    for c in d.held_out_classes:
        _check(
            0 <= c < num_classes,
            f"data.held_out_classes: class {c} does not exist ({d.dataset} has classes "
            f"0..{num_classes - 1})",
        )
    kept = num_classes - len(set(d.held_out_classes))
    _check(
        kept >= 2,
        f"data.held_out_classes leaves {kept} class(es) of {d.dataset}; "
        "a classifier and its attacks need at least 2",
    )
    if "salem" in cfg.attacks.names:
        _check(
            cfg.attacks.top_k <= kept,
            f"attacks.top_k ({cfg.attacks.top_k}) exceeds the {kept} classes the model has",
        )


def check_reference_config(cfg: Config) -> None:
    """Raise ``ConfigError`` for unknown or duplicate ``reference.attacks`` names."""
    from mistrust.attacks import REFERENCE_ATTACKS

    names = cfg.reference.attacks
    for name in names:
        if name not in REFERENCE_ATTACKS:
            raise ConfigError(
                f"reference.attacks: unknown attack {name!r}; choose from "
                f"{', '.join(REFERENCE_ATTACKS)}"
            )
    if len(set(names)) != len(names):
        raise ConfigError("reference.attacks has duplicates")
    if names and cfg.reference.n_models < 2:
        raise ConfigError(f"reference.n_models must be at least 2, got {cfg.reference.n_models}")


def _check_calibration(cfg: Config) -> None:
    """Post-hoc variant settings: allowed values and combinations."""
    v = cfg.variants
    _check(
        v.laplace_search_samples is None or v.laplace_search_samples > 0,
        "variants.laplace_search_samples must be positive",
    )
    if v.laplace_method == "paper":
        _check(
            v.laplace_prior == "grid" and v.laplace_pred == "mc",
            "variants.laplace_method: paper searches the prior on a grid and predicts by "
            "Monte Carlo; set variants.laplace_prior: grid and variants.laplace_pred: mc, "
            "or variants.laplace_method: laplace-torch",
        )
    # whether the splits leave the data a post-hoc variant fits on is the plan check's
    # (mistrust.plan): it knows the pool sizes, so it can say what would fit


def _check_private(cfg: Config) -> None:
    """DP-SGD and canary settings (docs/DP.md)."""
    from mistrust.variants import private_settings

    v = cfg.variants
    for name in v.names:  # a member named directly: its epsilon is in its name
        dp = private_settings(name, v)
        _check(
            dp is None or 0 < dp.epsilon <= 1000,
            f"variants.names: {name}: the target epsilon must be in (0, 1000]",
        )
    eps = v.dp_epsilon if isinstance(v.dp_epsilon, list) else [v.dp_epsilon]
    _check(bool(eps), "variants.dp_epsilon is empty; give a target epsilon or a list of them")
    for e in eps:
        _check(
            math.isfinite(e) and 0 < e <= 1000,
            f"variants.dp_epsilon must be in (0, 1000], got {e}",
        )
    _check(len(set(eps)) == len(eps), "variants.dp_epsilon has duplicates")
    _check(0 < v.dp_delta < 1, f"variants.dp_delta must be in (0, 1), got {v.dp_delta}")
    _check(
        v.dp_max_grad_norm > 0,
        f"variants.dp_max_grad_norm must be positive, got {v.dp_max_grad_norm}",
    )
    _check(cfg.canaries.count >= 0, f"canaries.count must be >= 0, got {cfg.canaries.count}")
    _check(
        not cfg.canaries.count or "canaries" not in cfg.eval.sets,
        "eval.sets: 'canaries' names the canaries' outputs when canaries.count is set; "
        "give the evaluation set another name",
    )


def _one_of(key: str, value: str, choices: Sequence[str]) -> None:
    names = " or ".join([", ".join(choices[:-1]), choices[-1]] if len(choices) > 1 else choices)
    _check(value in choices, f"{key} must be {names}, got {value!r}")


def _check_choices(cfg: Config) -> None:
    """Keys with a fixed set of values; each set is kept by the module that uses it."""
    from mistrust.attacks.salem import OUTPUTS
    from mistrust.attacks.signals import PRECISIONS
    from mistrust.calibration.laplace import PREDS, PRIORS
    from mistrust.data.folders import FITS
    from mistrust.data.sources import SPLITS
    from mistrust.devices import EXECUTORS
    from mistrust.metrics.rates import AUPR_METHODS
    from mistrust.training import AUGMENTS, OPTIMIZERS
    from mistrust.variants import CALIBRATION_SETS, LAPLACE_METHODS

    d, t, a, e, v = cfg.data, cfg.train, cfg.attacks, cfg.eval, cfg.variants
    for key, value, choices in (
        ("data.augment", d.augment, AUGMENTS),
        ("data.fit", d.fit, FITS),
        ("train.optimizer", t.optimizer, OPTIMIZERS),
        ("executor", cfg.executor, EXECUTORS),
        ("attacks.score_precision", a.score_precision, PRECISIONS),
        ("attacks.salem_score", a.salem_score, OUTPUTS),
        ("attacks.aupr", a.aupr, tuple(AUPR_METHODS)),
        ("eval.ood_split", e.ood_split, SPLITS),
        ("variants.laplace_method", v.laplace_method, tuple(LAPLACE_METHODS)),
        ("variants.laplace_prior", v.laplace_prior, PRIORS),
        ("variants.laplace_pred", v.laplace_pred, PREDS),
        ("variants.calibration_set", v.calibration_set, CALIBRATION_SETS),
    ):
        _one_of(key, value, choices)


def validate(cfg: Config) -> None:
    """Range and name checks that types alone cannot express."""
    from mistrust.attacks import attack_names
    from mistrust.data.sources import get_source, source_names
    from mistrust.devices import DEVICE_TYPES
    from mistrust.models import has_width, model_names, pretrainable
    from mistrust.variants import is_variant, variant_names

    _check_names(cfg)
    _finite_floats(cfg, "")
    _check_choices(cfg)
    d, t = cfg.data, cfg.train
    _check(
        d.dataset in source_names(),
        f"data.dataset: unknown dataset {d.dataset!r}; choose from {', '.join(source_names())}",
    )
    _check(cfg.model.width is None or cfg.model.width > 0, "model.width must be positive")
    _check(
        cfg.model.arch in model_names(),
        f"model.arch: unknown model {cfg.model.arch!r}; choose from {', '.join(model_names())}",
    )
    m = cfg.model
    _check(
        not m.pretrained or pretrainable(m.arch),
        f"model.pretrained: {m.arch} has no pretrained weights; set model.pretrained: false "
        f"or choose model.arch from {', '.join(n for n in model_names() if pretrainable(n))}",
    )
    _check(
        m.width is None or has_width(m.arch),
        f"model.width: {m.arch!r} has a fixed width; leave model.width unset",
    )
    for key in ("train_size", "test_size", "members", "nonmembers"):
        _check(getattr(d, key) > 0, f"data.{key} must be positive, got {getattr(d, key)}")
    _check(
        d.members <= d.train_size,
        f"data.members ({d.members}) cannot exceed data.train_size ({d.train_size})",
    )
    _check(
        d.nonmembers <= d.test_size,
        f"data.nonmembers ({d.nonmembers}) cannot exceed data.test_size ({d.test_size})",
    )
    if d.load_size is not None:
        _check(
            d.image_size is not None and d.load_size >= d.image_size,
            f"data.load_size ({d.load_size}) needs data.image_size set and at most "
            "data.load_size (images are kept at load_size and cropped to image_size)",
        )
    _check(t.lr > 0, f"train.lr must be positive, got {t.lr}")
    _check(t.epochs > 0, f"train.epochs must be positive, got {t.epochs}")
    _check(t.batch_size > 0, f"train.batch_size must be positive, got {t.batch_size}")
    _check(t.weight_decay >= 0, f"train.weight_decay must be >= 0, got {t.weight_decay}")
    _check(
        0 <= t.label_smoothing < 1,
        f"train.label_smoothing must be in [0, 1), got {t.label_smoothing}",
    )
    _check(
        cfg.device == "auto" or cfg.device.split(":")[0] in DEVICE_TYPES,
        f"device must be {', '.join(DEVICE_TYPES)} or auto, got {cfg.device!r}",
    )
    for name in cfg.variants.names:
        _check(
            is_variant(name),
            f"variants.names: unknown variant {name!r}; choose from {', '.join(variant_names())}",
        )
    _check(len(set(cfg.variants.names)) == len(cfg.variants.names), "variants.names has duplicates")
    for name in cfg.attacks.names:
        _check(
            name in attack_names(),
            f"attacks.names: unknown attack {name!r}; choose from {', '.join(attack_names())}",
        )
    _check(cfg.attacks.top_k > 0, f"attacks.top_k must be positive, got {cfg.attacks.top_k}")
    rows = cfg.attacks.salem_rows
    _check(
        rows is None or rows >= 2,
        f"attacks.salem_rows must be at least 2, or null for every shadow row, got {rows}",
    )
    _check(cfg.variants.temperature > 0, "variants.temperature must be positive")
    from mistrust.data.evalsets import evalset_names

    known = evalset_names()
    for name in cfg.eval.sets:
        _check(
            name in known or name in cfg.eval.folders,
            f"eval.sets: unknown evaluation set {name!r}; choose from {', '.join(known)} "
            "or name a folder under eval.folders",
        )
    check_reference_config(cfg)
    r = cfg.reference
    _check(r.n_models >= 2 or not r.attacks, "reference.n_models must be at least 2")
    _check(r.z_size > 0, "reference.z_size must be positive")
    _check(cfg.eval.gan_images > 0, "eval.gan_images must be positive")
    _check(cfg.eval.size is None or cfg.eval.size > 0, "eval.size must be positive")
    e, v = cfg.eval, cfg.variants
    for name in e.folders:
        _check(
            name not in known,
            f"eval.folders: {name!r} is a built-in evaluation set; give the folder another name",
        )
    _check(e.scale_factor > 0, f"eval.scale_factor must be positive, got {e.scale_factor}")
    _check(e.gan_epochs > 0, f"eval.gan_epochs must be positive, got {e.gan_epochs}")
    _check(e.gallery_size >= 0, f"eval.gallery_size must be >= 0, got {e.gallery_size}")
    from mistrust.data.evalsets import DATASET_SETS

    for name in e.iid_sets:
        _check(
            name in e.sets,
            f"eval.iid_sets: {name!r} is not in eval.sets; declare only sets that are scored",
        )
    for name in e.full_sets:  # a name not in eval.sets is allowed: nothing to do for it
        _check(
            name in DATASET_SETS or name in e.folders,
            f"eval.full_sets: {name!r} is not a dataset; only sets drawn from datasets or "
            f"folders can be used whole ({', '.join(DATASET_SETS)} or eval.folders)",
        )
    _check(d.image_size is None or d.image_size > 0, "data.image_size must be positive")
    _check(
        t.eval_batch_size > 0, f"train.eval_batch_size must be positive, got {t.eval_batch_size}"
    )
    _check(t.momentum >= 0, f"train.momentum must be >= 0, got {t.momentum}")
    _check(
        0 <= v.label_smoothing < 1,
        f"variants.label_smoothing must be in [0, 1), got {v.label_smoothing}",
    )
    _check(v.weight_decay >= 0, f"variants.weight_decay must be >= 0, got {v.weight_decay}")
    _check(v.laplace_samples > 0, "variants.laplace_samples must be positive")
    _check(v.laplace_grid > 0, "variants.laplace_grid must be positive")
    _check_calibration(cfg)
    _check_private(cfg)
    _check(
        0 <= cfg.seed < 2**31, f"seed must be an integer in [0, 2^31), got {cfg.seed}"
    )  # numpy refuses negative seeds; torch's and ours (seed + 1000 + i) must fit
    _check(cfg.seeds > 0, f"seeds must be a positive integer, got {cfg.seeds}")
    _check(
        cfg.seed + cfg.seeds <= 2**31,
        f"seeds: seed + seeds - 1 = {cfg.seed + cfg.seeds - 1} must be below 2^31; "
        "lower seeds or seed",
    )
    for key, names in (
        ("variants.names", v.names),
        ("attacks.names", cfg.attacks.names),
        ("eval.sets", e.sets),
    ):
        _check(bool(names), f"{key} is empty; name at least one")
    _check(
        r.n_models <= MAX_REFERENCE_MODELS,
        f"reference.n_models must be at most {MAX_REFERENCE_MODELS}, got {r.n_models}",
    )
    num_classes = get_source(d.dataset).num_classes
    if num_classes:
        _check_classes(cfg, num_classes)
