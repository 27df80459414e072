"""``mistrust audit``: audit a model trained elsewhere, or its outputs, into a run directory.

config (:mod:`mistrust.config.own`) -> the target's (and shadow's) data -> outputs,
computed once from the model (:mod:`mistrust.models.external`) or read from files ->
the scoring that ``mistrust run`` uses too (:func:`mistrust.pipeline.scoring.score_variants`:
post-hoc variants, the audit core, model metrics) -> galleries, the per-sample view,
``results.csv``, tables and ``report.html`` (:func:`mistrust.pipeline.finish.finish_run`,
as a run ends). The run directory is that of ``mistrust run``: outputs are
cached under ``outputs/<variant>/<role>/`` (``train.npz`` = the members, ``test.npz``
= the non-members then the calibration images), so a second run on the same
directory reuses them and ends byte-identical; changed inputs recompute them.

This module is the driver: the run directory, the key of the inputs that decides when
cached outputs are stale, and the order of the stages. The stages of its own are
:mod:`mistrust.own.inputs` (model, images, preprocessing), :mod:`mistrust.own.shadow`
(the shadow) and :mod:`mistrust.own.outputs` (the outputs, computed once, and their
index arrays); everything after the outputs is :mod:`mistrust.pipeline`'s.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from mistrust.calibration.variants import BASE, get_variant, sets_needed
from mistrust.config.own import AuditConfig, load_audit_config, validate_audit
from mistrust.core.outputs import Outputs
from mistrust.io import atomic_write_text, exclusive, log_file
from mistrust.own.outputs import outputs_from_files, outputs_from_model, role_splits
from mistrust.pipeline.finish import Members, finish_run
from mistrust.pipeline.privacy import Guarantee
from mistrust.pipeline.reference import ReferenceOutputs
from mistrust.pipeline.scoring import score_variants
from mistrust.pipeline.timing import Timer
from mistrust.present.results import RunResult
from mistrust.rows import MetricRow
from mistrust.runtime.devices import resolve_device
from mistrust.runtime.paths import RunPaths

log = logging.getLogger(__name__)

__all__ = ["run_audit"]


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
        result.value("threshold", "scaled", "fpr", variant="base")

    Args:
        config: an :class:`~mistrust.config.own.AuditConfig`, a YAML path or a dict
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
    with exclusive(run_dir, what=f"run directory {run_dir}"), log_file(RunPaths(run_dir).log):
        return _audit_locked(cfg, run_dir, progress=progress, report=report)


def _audit_locked(cfg: AuditConfig, run_dir: Path, *, progress: bool, report: bool) -> RunResult:
    paths = RunPaths(run_dir).prepare()
    timer = Timer()
    key = _forget_stale_outputs(cfg, paths)
    with timer.stage("outputs"):
        if cfg.logits_only:
            computed = None
            sets = outputs_from_files(cfg.logits, paths)
        else:
            computed = outputs_from_model(
                cfg.target,
                cfg.shadow,
                cfg.preprocess,
                cfg.eval,
                cfg.train,
                cfg.variants.names,
                paths,
                seed=cfg.seed,
                root=cfg.data_root,
                device=str(resolve_device(cfg.device)),
                progress=progress,
                timer=timer,
            )
            sets = computed.sets
        atomic_write_text(paths.inputs_key, key + "\n")  # the outputs now match them
    log.info("outputs: %s (%.1f s)", ", ".join(["original", *sets]), timer.seconds["outputs"])
    reference = None
    if cfg.reference.attacks and computed is None:  # read and checked before any scoring
        from mistrust.own.reference import reference_from_files

        reference = reference_from_files(cfg.reference, sets, paths)
    elif cfg.reference.n_models:  # trained here, then audited as the same checkpoints
        from mistrust.own.reference_train import reference_from_training

        device = str(resolve_device(cfg.device))
        with timer.stage("reference models"):
            reference = reference_from_training(
                cfg, computed, paths, device=device, progress=progress
            )
    elif cfg.reference.attacks:  # the checkpoints' logits, computed once, then the same
        from mistrust.own.reference_models import reference_from_models

        device = str(resolve_device(cfg.device))
        with timer.stage("outputs"):
            reference = reference_from_models(
                cfg, computed, paths, batch=cfg.train.eval_batch_size, device=device
            )
    roles = ("target", "shadow") if cfg.has_shadow else ("target",)
    splits = {k: v for role in roles for k, v in role_splits(paths, role).items()}
    scored = score_variants(
        [get_variant(v) for v in cfg.variants.names],
        cfg.attacks,
        cfg.variants,
        paths,
        splits,
        roles,
        ["original", *sets],
        seed=cfg.seed,
        batch_size=cfg.train.batch_size,
        iid_sets=cfg.eval.iid_sets,
        baseline=(lambda: None) if computed is None else computed.baseline,  # no inputs: none
        timer=timer,
        fork=False,
        claimed=_claimed(cfg),
    )
    attack_rows = scored.attack_rows
    if reference is not None:
        attack_rows = _reference_rows(cfg, paths, sets, reference, attack_rows, scored.blind, timer)
    result = RunResult(
        run_dir=run_dir,
        attack_rows=attack_rows,
        model_rows=scored.model_rows,
        variant_info=scored.variant_info,
        timings=timer.seconds,
    )
    saved = cfg.to_dict()
    if cfg.logits_only or (cfg.shadow.source != "train" and not cfg.reference.n_models):
        saved.pop("train")  # no model was trained: the report shows no training settings
    members = Members(
        splits["target_members"],
        Outputs.load(paths.outputs(BASE, "target", "train")).labels,
        None if computed is None else computed.members,
    )
    return finish_run(
        paths,
        result,
        variants=cfg.variants.names,
        attacks=cfg.attacks.names,
        config=cfg.to_dict(),
        saved_config=saved,
        displays={} if computed is None else computed.displays,
        target_scores=scored.target_scores,
        members=members,
        gallery_size=cfg.eval.gallery_size,
        timer=timer,
        report=report,
    )


def _claimed(cfg: AuditConfig) -> Guarantee | None:
    """The model's DP guarantee, if its owner names one: every epsilon lower bound of
    every variant is checked against it (docs/DP.md)."""
    t = cfg.target
    return None if t.dp_epsilon is None else Guarantee(t.dp_epsilon, t.dp_delta)


def _reference_rows(
    cfg: AuditConfig,
    paths: RunPaths,
    sets: list[str],
    outs: ReferenceOutputs,
    attack_rows: list[MetricRow],
    blind: dict[str, np.ndarray] | None,
    timer: Timer,
) -> list[MetricRow]:
    """The reference attacks on the reference models' outputs from files, scored as
    ``mistrust run`` scores those of the models it trains."""
    from mistrust.pipeline.reference import add_reference_rows

    r = cfg.reference
    source = Path(str(r.logits)).name if r.logits else "checkpoints"
    source = "the audit's training" if r.n_models else source
    say = f"reference: {outs.n_models} models from {source}, {', '.join(r.attacks)}"
    with timer.stage("reference", say=say):
        return add_reference_rows(
            attack_rows,
            r,
            outs,
            ["original", *sets],
            paths,
            aupr=cfg.attacks.aupr,
            seed=cfg.seed,
            blind=blind,
            iid_sets=cfg.eval.iid_sets,
        )


# ---- resume ---------------------------------------------------------------------------


def _inputs_key(cfg: AuditConfig) -> str:
    """Everything that changes an output: the data / model sections, each named file's
    size and modification time, and the code of each factory that builds a model."""
    from mistrust.models.external import factory_code
    from mistrust.own.reference_models import reference_key

    doc = {k: cfg.to_dict()[k] for k in ("seed", "target", "shadow", "preprocess", "logits")}
    doc["code"] = {role: factory_code(*spec) for role, spec in _factories(cfg).items()}
    reference = reference_key(cfg)
    if reference:  # only then: the keys of other audits stay as they were
        doc["reference"] = reference
    doc["eval"] = dataclasses.asdict(cfg.eval)
    doc["train"] = dataclasses.asdict(cfg.train)
    doc["variant_sets"] = sets_needed(cfg.variants.names)  # computed for the shadow too
    stats = {}
    for path in _paths(doc) + [f for f in doc.get("reference", {}).get("files", []) if f]:
        p = Path(path)
        stats[path] = [p.stat().st_size, p.stat().st_mtime_ns] if p.exists() else None
    doc["files"] = stats
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _factories(cfg: AuditConfig) -> dict[str, tuple[str, dict[str, Any]]]:
    """The factory and its arguments of each role's model that one builds (a shadow falls
    back on the target's, as :func:`mistrust.own.inputs.load_model` does)."""
    t, s = cfg.target, cfg.shadow
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    if cfg.logits_only:
        return out
    if t.factory is not None:
        out["target"] = (t.factory, dict(t.factory_args))
    factory = s.factory or t.factory
    if factory and (s.source == "train" or (s.source == "checkpoint" and s.weights)):
        out["shadow"] = (factory, dict(s.factory_args or t.factory_args))
    r = cfg.reference
    if r.attacks and (r.weights or r.n_models):
        factory = r.factory or t.factory
        assert factory is not None  # validate_audit
        out["reference"] = (factory, dict(r.factory_args or t.factory_args))
    return out


def _paths(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [p for v in node.values() for p in _paths(v)]
    if isinstance(node, str) and ("/" in node or "." in node) and Path(node).exists():
        return [node]
    return []


def _forget_stale_outputs(cfg: AuditConfig, paths: RunPaths) -> str:
    """Remove cached outputs computed from other inputs; return the key of these inputs."""
    key_file = paths.inputs_key
    key = _inputs_key(cfg)
    if paths.outputs_dir.exists() and (
        not key_file.is_file() or key_file.read_text().strip() != key
    ):
        log.warning(
            "the audited model, its factory's code or its data changed since the last run "
            "here; recomputing the outputs"
        )
        for sub in (paths.outputs_dir, paths.scores_dir, paths.figures_dir):
            shutil.rmtree(sub, ignore_errors=True)
    return key
