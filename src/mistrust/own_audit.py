"""``mistrust audit``: audit a model trained elsewhere, or its outputs, into a run directory.

config (:mod:`mistrust.audit_config`) -> the target's (and shadow's) data -> outputs,
computed once from the model (:mod:`mistrust.models.external`) or read from files ->
post-hoc variants (:func:`mistrust.posthoc.apply_posthoc`) -> the audit core
(:func:`mistrust.evaluate.evaluate_attacks` -> :func:`mistrust.auditing.audit`) ->
``results.csv``, tables and ``report.html`` (:mod:`mistrust.results`,
:mod:`mistrust.report`). The run directory is that of ``mistrust run``: outputs are
cached under ``outputs/<variant>/<role>/`` (``train.npz`` = the members, ``test.npz``
= the non-members then the calibration images), so a second run on the same
directory reuses them and ends byte-identical; changed inputs recompute them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mistrust.audit_config import (
    AuditConfig,
    DataSpec,
    ModelSpec,
    load_audit_config,
    validate_audit,
)
from mistrust.auditing import labels_or_predicted
from mistrust.blind import score_sets
from mistrust.data.images import ImageSet, Preprocess
from mistrust.devices import resolve_device
from mistrust.errors import DataError, InputError
from mistrust.evaluate import RoleOutputs, evaluate_attacks, model_metrics
from mistrust.io import atomic_torch_save, atomic_write_text, exclusive, load_npz
from mistrust.outputs import Outputs
from mistrust.posthoc import apply_posthoc
from mistrust.results import RunResult, write_results
from mistrust.variants import get_variant

log = logging.getLogger(__name__)

__all__ = ["run_audit"]

#: model metrics that need true labels (left out for unlabelled members / non-members)
_LABELLED_METRICS = ("accuracy", "ece", "overconfidence_error", "nll")


def run_audit(
    config: AuditConfig | str | Path | dict[str, Any],
    out: str | Path,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    progress: bool = False,
    report: bool = True,
) -> RunResult:
    """Audit a model from outside (or its saved outputs) into the run directory ``out``.

    Example::

        import mistrust
        result = mistrust.run_audit("audit.yaml", "runs/mine")
        result.value("base", "threshold", "scaled", "fpr")

    Args:
        config: an :class:`~mistrust.audit_config.AuditConfig`, a YAML path or a dict
            (README, "Audit your own model", shows the layout).
        out: the run directory (``results.csv``, ``report.html``, ...); a second run
            into it reuses every cached output.
        overrides: ``key=value`` strings as ``--set``.
        progress: progress bars (shadow training, GAN).
        report: build ``report.html`` (``mistrust report`` builds it later).

    Raises:
        mistrust.errors.MistrustError: a wrong path, a model whose outputs do not fit
            the labels or inputs, a state dict that does not fit the factory, ...
    """
    if isinstance(config, AuditConfig):
        validate_audit(config)
        cfg = config
    else:
        cfg = load_audit_config(config, overrides)
    run_dir = Path(out)
    with exclusive(run_dir, what=f"run directory {run_dir}"):
        return _audit_locked(cfg, run_dir, progress=progress, report=report)


def _audit_locked(cfg: AuditConfig, run_dir: Path, *, progress: bool, report: bool) -> RunResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.rglob(".*.tmp"):  # half-written files of a killed run
        stale.unlink(missing_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    key = _forget_stale_outputs(cfg, run_dir)
    base = run_dir / "outputs" / "base"
    blind: dict[str, np.ndarray] | None = None  # no inputs, no blind baseline
    if cfg.logits_only:
        sets, displays = _outputs_from_files(cfg, base), {}
    else:
        sets, displays, blind = _outputs_from_model(cfg, run_dir, base, progress)
    atomic_write_text(run_dir / "inputs.sha256", key + "\n")  # the outputs now match them
    timings["outputs"] = time.perf_counter() - t0
    log.info("outputs: %s (%.1f s)", ", ".join(["original", *sets]), timings["outputs"])
    roles = ("target", "shadow") if cfg.has_shadow else ("target",)
    splits = {k: v for role in roles for k, v in _splits(base / role, role).items()}
    info: dict[str, dict] = {}
    t0 = time.perf_counter()
    for name in cfg.variants.names:
        if get_variant(name).posthoc:
            _check_calibration_labels(cfg, base, roles, name)
            info[name] = apply_posthoc(
                name,
                cfg.variants,
                run_dir / "outputs",
                splits,
                seed=cfg.seed,
                batch_size=cfg.train.batch_size,
                roles=roles,
            )
    timings["calibration"] = time.perf_counter() - t0
    attack_rows: list[tuple] = []
    model_rows: list[tuple] = []
    t0 = time.perf_counter()
    first_scores: dict[str, dict[str, np.ndarray]] = {}
    for v in cfg.variants.names:
        per_role = {
            role: _role_outputs(run_dir / "outputs" / v / role, role, splits, list(sets))
            for role in roles
        }
        rows, scores = evaluate_attacks(
            cfg.attacks,
            v,
            per_role["target"],
            per_role.get("shadow"),
            run_dir / "scores" / v,
            seed=cfg.seed,
            baseline=blind,
        )
        attack_rows += rows
        first_scores = first_scores or scores
        for role in roles:
            model_rows += _model_rows(v, role, per_role[role])
    timings["attacks"] = time.perf_counter() - t0
    log.info(
        "attacks and metrics: %d variants (%.1f s)", len(cfg.variants.names), timings["attacks"]
    )
    if displays and cfg.eval.gallery_size > 0:
        _galleries(cfg, run_dir, displays, first_scores)
    result = RunResult(
        run_dir=run_dir,
        attack_rows=attack_rows,
        model_rows=model_rows,
        variant_info=info,
        timings=timings,
    )
    import yaml

    doc = cfg.to_dict()
    if cfg.logits_only or cfg.shadow.source != "train":
        doc.pop("train")  # no model was trained: the report shows no training settings
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(doc, sort_keys=False))
    write_results(
        result, variants=cfg.variants.names, attacks=cfg.attacks.names, config=cfg.to_dict()
    )
    if report:
        from mistrust.report import build_report

        build_report(run_dir)
        log.info("report: %s", run_dir / "report.html")
    return result


# ---- resume ---------------------------------------------------------------------------


def _inputs_key(cfg: AuditConfig) -> str:
    """Everything that changes an output: the data / model sections and each named file's
    size and modification time."""
    doc = {k: cfg.to_dict()[k] for k in ("seed", "target", "shadow", "preprocess", "logits")}
    doc["eval"] = dataclasses.asdict(cfg.eval)
    doc["train"] = dataclasses.asdict(cfg.train)
    doc["laplace"] = "laplace" in cfg.variants.names
    stats = {}
    for path in _paths(doc):
        p = Path(path)
        stats[path] = [p.stat().st_size, p.stat().st_mtime_ns] if p.exists() else None
    doc["files"] = stats
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _paths(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [p for v in node.values() for p in _paths(v)]
    if isinstance(node, str) and ("/" in node or "." in node) and Path(node).exists():
        return [node]
    return []


def _forget_stale_outputs(cfg: AuditConfig, run_dir: Path) -> str:
    """Remove cached outputs computed from other inputs; return the key of these inputs."""
    key_file = run_dir / "inputs.sha256"
    key = _inputs_key(cfg)
    if (run_dir / "outputs").exists() and (
        not key_file.is_file() or key_file.read_text().strip() != key
    ):
        log.warning("the audited model or data changed since the last run here; recomputing")
        for sub in ("outputs", "scores", "figures"):
            shutil.rmtree(run_dir / sub, ignore_errors=True)
    return key


# ---- outputs from files (logits only) ---------------------------------------------------


def _read(path: str | None, kind: str) -> Outputs | None:
    from mistrust.data.external import read_outputs_file

    if path is None:
        return None
    logits, labels = read_outputs_file(path, kind=kind)
    return Outputs(logits.astype(np.float32), labels)


def _save_role(dest: Path, members: Outputs, nonmembers: Outputs, cal: Outputs | None) -> None:
    width = {members.logits.shape[1], nonmembers.logits.shape[1]}
    if cal is not None:
        width.add(cal.logits.shape[1])
    if len(width) != 1:
        raise InputError(
            f"{dest.name}: members, non-members and calibration outputs have different "
            f"numbers of classes ({', '.join(map(str, sorted(width)))}); they must come from "
            "one model"
        )
    test = nonmembers if cal is None else _concat(nonmembers, cal)
    members.save(dest / "train.npz")
    test.save(dest / "test.npz")
    atomic_write_text(dest / "parts.json", json.dumps({"nonmembers": len(nonmembers)}))


def _concat(a: Outputs, b: Outputs) -> Outputs:
    feats = None
    if a.features is not None and b.features is not None:
        feats = np.concatenate([a.features, b.features])
    return Outputs(
        np.concatenate([a.logits, b.logits]), np.concatenate([a.labels, b.labels]), feats
    )


def _outputs_from_files(cfg: AuditConfig, base: Path) -> list[str]:
    lg, kind = cfg.logits, cfg.logits.kind
    roles = {"target": lg.target, "shadow": lg.shadow} if cfg.has_shadow else {"target": lg.target}
    width = None
    for role, files in roles.items():
        members, nonmembers = _read(files.members, kind), _read(files.nonmembers, kind)
        assert members is not None and nonmembers is not None  # validate_audit
        _save_role(base / role, members, nonmembers, _read(files.calibration, kind))
        width = width or members.logits.shape[1]
        if members.logits.shape[1] != width:
            raise InputError(
                f"the target has {width} output columns but the shadow has "
                f"{members.logits.shape[1]}; both models must classify the same classes"
            )
    for name, path in lg.sets.items():
        out = _read(path, kind)
        assert out is not None
        if out.logits.shape[1] != width:
            raise InputError(
                f"{path}: {out.logits.shape[1]} output columns, but the target's members have "
                f"{width}; every set must be scored by the same model"
            )
        out.save(base / "target" / f"{name}.npz")
    return list(lg.sets)


# ---- outputs from a model --------------------------------------------------------------


def _preprocess(cfg: AuditConfig, shape: tuple[int, ...] | None) -> Preprocess:
    p = cfg.preprocess
    channels = p.channels or (shape[0] if shape else None)
    size = p.size or (shape[-1] if shape else None)
    if channels is None or size is None:
        raise InputError(
            "preprocess.size and preprocess.channels: not set, and the model does not fix its "
            "input shape; give the size and channel count the model was trained on"
        )
    mean = tuple(p.mean) or (0.0,) * channels
    std = tuple(p.std) or (1.0,) * channels
    if len(mean) != channels or len(std) != channels:
        raise InputError(
            f"preprocess.mean / std need {channels} values (one per channel), got "
            f"{len(mean)} / {len(std)}"
        )
    return Preprocess(channels, size, mean, std)


def _load_model(spec: ModelSpec, fallback: ModelSpec | None = None) -> Any:
    from mistrust.models.external import load_exported, load_factory_model

    if spec.model is not None:
        return load_exported(spec.model, last_layer=spec.last_layer)
    factory = spec.factory or (fallback.factory if fallback else None)
    kwargs = spec.factory_args or (fallback.factory_args if fallback else {})
    assert factory is not None and spec.weights is not None  # validate_audit
    return load_factory_model(factory, spec.weights, kwargs=kwargs, last_layer=spec.last_layer)


def _images(cfg: AuditConfig, spec: DataSpec, pre: Preprocess, what: str) -> ImageSet:
    from mistrust.data.external import (
        load_dataset_subset,
        load_image_arrays,
        load_labelled_folder,
    )

    if spec.folder is not None:
        return load_labelled_folder(
            spec.folder,
            size=pre.size,
            channels=pre.channels,
            labels=spec.labels,
            name=what,
            fit=cfg.preprocess.fit,
        )
    if spec.npz is not None:
        return load_image_arrays(spec.npz, name=what)
    assert spec.dataset is not None
    images, _ = load_dataset_subset(
        spec.dataset,
        split=spec.split,
        index=spec.index,
        root=cfg.data_root,
        size=pre.size,
        channels=pre.channels,
    )
    return ImageSet(images.images, images.labels, images.classes, what)


def _outputs(
    model: Any, images: ImageSet, pre: Preprocess, cfg: AuditConfig, device: str
) -> Outputs:
    logits, feats = model.outputs(
        pre(images.images), batch_size=cfg.train.eval_batch_size, device=device
    )
    labels = images.labels.numpy().astype(np.int64)
    if labels.max(initial=-1) >= logits.shape[1]:
        raise InputError(
            f"{images.name}: the model has {logits.shape[1]} outputs but a label is "
            f"{int(labels.max())}; the labels must be the model's class indices 0..."
            f"{logits.shape[1] - 1}"
        )
    out = Outputs(logits, labels, feats)
    out.check_finite(images.name, hint="check the preprocessing (preprocess.mean / std)")
    return out


def _role_images(cfg: AuditConfig, role: str, pre: Preprocess) -> dict[str, ImageSet]:
    sec = cfg.target if role == "target" else cfg.shadow
    parts = {"members": sec.members, "nonmembers": sec.nonmembers}
    if sec.calibration.given():
        parts["calibration"] = sec.calibration
    return {k: _images(cfg, spec, pre, f"{role}.{k}") for k, spec in parts.items()}


def _outputs_from_model(
    cfg: AuditConfig, run_dir: Path, base: Path, progress: bool
) -> tuple[list[str], dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """Outputs of the target (and shadow) on every set, cached under ``base``; returns the
    set names, the images to draw, and the blind baseline's scores per set."""
    from mistrust.data.evalsets import EvalContext, build_evalset
    from mistrust.data.sources import default_cache

    device = str(resolve_device(cfg.device))
    target = _load_model(cfg.target)
    pre = _preprocess(cfg, target.input_shape)
    images = _role_images(cfg, "target", pre)
    _role_from_model(target, images, pre, cfg, device, base / "target", run_dir, "target")
    names = [n for n in cfg.eval.sets if n != "original"]
    if "laplace" in cfg.variants.names and "noise" not in names:
        names.append("noise")  # the Laplace prior objective needs a noise OOD set
    ctx = EvalContext(
        preprocess=pre,
        nonmembers=images["nonmembers"],
        held_out=None,
        gan_data=images["nonmembers"],  # never the target's members
        size=cfg.eval.size or len(images["nonmembers"]),
        seed=cfg.seed,
        root=cfg.data_root,
        download=True,
        cache_dir=default_cache(),
        scale_factor=cfg.eval.scale_factor,
        gan_epochs=cfg.eval.gan_epochs,
        folders=cfg.eval.folders,
        device=device,
        progress=progress,
        ood_split=cfg.eval.ood_split,
        full_sets=tuple(cfg.eval.full_sets),
        fit=cfg.preprocess.fit,
    )
    displays: dict[str, torch.Tensor] = {}
    inputs: dict[str, torch.Tensor] = {}  # what the blind baseline sees, per audited set
    for name in ["original", *names]:
        cached = name != "original" and (base / "target" / f"{name}.npz").is_file()
        if cached and name not in cfg.eval.sets:
            continue
        s = build_evalset(name, ctx)
        if name == "original" or name in cfg.eval.sets:
            inputs[name] = s.x
        if cached:
            continue  # outputs cached (its gallery was drawn when they were computed)
        if name in cfg.eval.sets:
            displays[name] = s.display
        if name == "original":
            continue
        labels = s.labels.numpy()
        logits, feats = target.outputs(s.x, batch_size=cfg.train.eval_batch_size, device=device)
        out = Outputs(logits, labels.astype(np.int64), feats)
        out.check_finite(f"outputs on {name}", hint="these inputs overflow the model")
        out.save(base / "target" / f"{name}.npz")
    if "laplace" in cfg.variants.names:
        if not target.head_is_output and target.head_is_output is not None:
            raise InputError(
                f"variants.names: laplace recalibrates the last linear layer "
                f"({target.head_name!r}), but the model's output is not that layer's output; "
                "name the layer that produces the logits with target.last_layer, or leave "
                "laplace out"
            )
    if cfg.has_shadow:
        shadow = _shadow_model(cfg, run_dir, pre, images, device, progress)
        shadow_images = _role_images(cfg, "shadow", pre)
        _role_from_model(
            shadow, shadow_images, pre, cfg, device, base / "shadow", run_dir, "shadow"
        )
        if "laplace" in cfg.variants.names and not (base / "shadow" / "noise.npz").is_file():
            x = build_evalset("noise", ctx).x
            logits, feats = shadow.outputs(x, batch_size=cfg.train.eval_batch_size, device=device)
            Outputs(logits, np.full(len(logits), -1, np.int64), feats).save(
                base / "shadow" / "noise.npz"
            )
    members = pre(images["members"].images)
    blind = score_sets(members, inputs, run_dir / "baseline", seed=cfg.seed)
    return [n for n in cfg.eval.sets if n != "original"], displays, blind


def _role_from_model(
    model: Any,
    images: dict[str, ImageSet],
    pre: Preprocess,
    cfg: AuditConfig,
    device: str,
    dest: Path,
    run_dir: Path,
    role: str,
) -> None:
    """Cache ``role``'s outputs on its members / non-members and its last layer."""
    if not ((dest / "train.npz").is_file() and (dest / "test.npz").is_file()):
        outs = {k: _outputs(model, s, pre, cfg, device) for k, s in images.items()}
        _save_role(dest, outs["members"], outs["nonmembers"], outs.get("calibration"))
    head = model.head
    atomic_torch_save(
        run_dir / "models" / "base" / f"{role}.pt",
        {
            "state_dict": {
                "head.weight": head.weight.detach().cpu(),
                "head.bias": head.bias.detach().cpu(),
            },
            "meta": {"role": role, "last_layer": model.head_name, "outside": True},
        },
    )


def _shadow_model(
    cfg: AuditConfig,
    run_dir: Path,
    pre: Preprocess,
    target_images: dict[str, ImageSet],
    device: str,
    progress: bool,
) -> Any:
    s, t = cfg.shadow, cfg.target
    if s.source == "checkpoint":
        return _load_model(s, fallback=t)
    from mistrust.models.external import build_factory_model, wrap_module
    from mistrust.training import train_model

    train = _images(cfg, s.members, pre, "shadow.members")
    _check_disjoint(cfg, target_images["members"], train, "shadow.members")
    _check_disjoint(
        cfg,
        target_images["members"],
        _images(cfg, s.nonmembers, pre, "shadow.nonmembers"),
        "shadow.nonmembers",
    )
    if (train.labels < 0).any():
        raise DataError(
            "shadow.members: training a shadow needs a label for every image; use class "
            "sub-folders, a labels file or 'labels' in the .npz"
        )
    factory = s.factory or t.factory
    kwargs = s.factory_args or t.factory_args
    assert factory is not None
    key = {
        "factory": factory,
        "kwargs": kwargs,
        "train": dataclasses.asdict(cfg.train),
        "seed": cfg.seed,
        "preprocess": dataclasses.asdict(pre),
        "data": hashlib.sha256(
            train.images.numpy().tobytes() + train.labels.numpy().tobytes()
        ).hexdigest(),
    }
    fp = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = run_dir / "models" / "trained" / "shadow.pt"
    torch.manual_seed(cfg.seed + 1)
    model = build_factory_model(factory, kwargs)
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["state_dict"])
            log.debug("reusing the trained shadow %s", path)
            return wrap_module(model, last_layer=s.last_layer or t.last_layer)
    t0 = time.perf_counter()
    train_model(
        model,
        train.images,
        train.labels,
        pre,
        cfg.train,
        seed=cfg.seed + 1,
        device=device,
        checkpoint=path.with_suffix(".ckpt.pt"),
        fingerprint=fp,
        progress=progress,
        desc="shadow",
    )
    model.cpu()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(path, {"state_dict": state, "fingerprint": fp})
    path.with_suffix(".ckpt.pt").unlink(missing_ok=True)
    log.info(
        "shadow: trained %d epochs on %d images (%.1f s)",
        cfg.train.epochs,
        len(train),
        time.perf_counter() - t0,
    )
    return wrap_module(model, last_layer=s.last_layer or t.last_layer)


def _check_disjoint(cfg: AuditConfig, members: ImageSet, other: ImageSet, key: str) -> None:
    """The shadow's data must not hold the target's members: by row index for the same
    registry dataset and split, by content (SHA-256 of the pixels) otherwise."""
    from mistrust.data.external import content_hashes, read_index

    a, b = cfg.target.members, getattr(cfg.shadow, key.split(".")[1])
    if a.dataset is not None and (a.dataset, a.split) == (b.dataset, b.split):
        n = 2**62
        ia = set(read_index(a.index, n).tolist()) if a.index else None
        ib = set(read_index(b.index, n).tolist()) if b.index else None
        shared = len(ia & ib) if ia is not None and ib is not None else -1
        if shared:
            raise DataError(
                f"{key}: {'all' if shared < 0 else shared} rows of {a.dataset} ({a.split}) are "
                "also target members; give the shadow rows the target never trained on "
                f"(disjoint index files)"
            )
        return
    seen = set(content_hashes(members.images))
    shared = sum(h in seen for h in content_hashes(other.images))
    if shared:
        raise DataError(
            f"{key}: {shared} of its {len(other)} images are also target members (identical "
            "pixels); a shadow must be trained and tested on data disjoint from the target's "
            "members"
        )


# ---- attacks and metrics ---------------------------------------------------------------


def _splits(dest: Path, role: str) -> dict[str, np.ndarray]:
    """Index arrays of the cached files, as :func:`mistrust.data.splits.make_splits` names
    them: train.npz = the members, test.npz = the non-members then the calibration images."""
    n_members = len(load_npz(dest / "train.npz")["labels"])
    n_test = len(load_npz(dest / "test.npz")["labels"])
    n_non = json.loads((dest / "parts.json").read_text())["nonmembers"]
    return {
        f"{role}_train": np.arange(n_members),
        f"{role}_members": np.arange(n_members),
        f"{role}_test": np.arange(n_test),
        f"{role}_nonmembers": np.arange(n_non),
        f"{role}_calibration": np.arange(n_non, n_test),
    }


def _role_outputs(
    out_dir: Path, role: str, splits: dict[str, np.ndarray], set_names: list[str]
) -> RoleOutputs:
    train = Outputs.load(out_dir / "train.npz")
    test = Outputs.load(out_dir / "test.npz")
    nonmembers = test.subset(splits[f"{role}_nonmembers"])
    sets = {"original": nonmembers}
    if role == "target":
        sets.update({n: Outputs.load(out_dir / f"{n}.npz") for n in set_names})
    return RoleOutputs(train, nonmembers, train, test, sets)


def _model_rows(variant: str, role: str, outs: RoleOutputs) -> list[tuple]:
    """:func:`mistrust.evaluate.model_metrics`; without labels only those that need none."""
    labelled = (outs.train.labels >= 0).all() and (outs.test.labels >= 0).all()
    if labelled:
        return model_metrics(variant, role, outs)

    def guess(o: Outputs) -> Outputs:
        return Outputs(o.logits, labels_or_predicted(o.logits, o.labels), o.features)

    fake = RoleOutputs(
        guess(outs.members), guess(outs.nonmembers), guess(outs.train), guess(outs.test), outs.sets
    )
    return [r for r in model_metrics(variant, role, fake) if r[3] not in _LABELLED_METRICS]


def _check_calibration_labels(
    cfg: AuditConfig, base: Path, roles: tuple[str, ...], name: str
) -> None:
    if name == "temperature":
        return
    for role in roles:
        labels = load_npz(base / role / ("test.npz" if name == "temperature-fit" else "train.npz"))[
            "labels"
        ]
        if (labels < 0).any():
            raise InputError(
                f"variants.names: {name} fits on labelled data, but {role}'s "
                f"{'non-members' if name == 'temperature-fit' else 'members'} have no labels; "
                "give labels or leave the variant out"
            )


def _galleries(
    cfg: AuditConfig,
    run_dir: Path,
    displays: dict[str, torch.Tensor],
    scores: dict[str, dict[str, np.ndarray]],
) -> None:
    """Top-scored non-members of each set, for the first variant and attack."""
    from mistrust.report.gallery import save_gallery, top_scored

    if not scores:
        return
    variant = cfg.variants.names[0]
    attack = next(iter(scores))
    for name, display in displays.items():
        score = scores[attack].get(name)
        if score is None:
            continue
        n_members = len(score) - len(display)
        top = top_scored(score[n_members:], cfg.eval.gallery_size)
        max_scores = load_npz(run_dir / "scores" / variant / attack / f"{name}.npz")["max_score"]
        save_gallery(
            display[torch.from_numpy(top)],
            max_scores[n_members:][top],
            run_dir / "figures" / f"gallery_{name}.png",
            title=f"{name}: highest {attack} scores among non-members ({variant})",
        )
