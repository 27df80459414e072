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

This module is the driver: the run directory, the key of the inputs that decides when
cached outputs are stale, and the order of the stages. The stages of its own are
:mod:`mistrust.own_inputs` (model, images, preprocessing), :mod:`mistrust.own_shadow`
(the shadow), :mod:`mistrust.own_outputs` (the outputs, computed once) and
:mod:`mistrust.own_results` (the cache read back, model metrics, galleries).
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

from mistrust.audit_config import AuditConfig, load_audit_config, validate_audit
from mistrust.checks.dp import accounting_rows, dp_violation_rows
from mistrust.evaluate import evaluate_attacks
from mistrust.io import atomic_write_text, exclusive
from mistrust.own_outputs import outputs_from_files, outputs_from_model
from mistrust.own_results import (
    check_calibration_labels,
    galleries,
    model_rows,
    read_role,
    role_splits,
)
from mistrust.posthoc import apply_posthoc
from mistrust.results import RunResult, write_results
from mistrust.rows import MetricRow, ModelRow
from mistrust.run_paths import RunPaths
from mistrust.variants import get_variant

log = logging.getLogger(__name__)

__all__ = ["run_audit"]


def with_guarantee(
    variants: list[str],
    attack_rows: list[MetricRow],
    model_rows: list[ModelRow],
    epsilon: float,
    delta: float | None,
) -> tuple[list[MetricRow], list[ModelRow]]:
    """The rows with the model's named DP guarantee (``target.dp_epsilon``, ``dp_delta``)
    and the DP check of every variant's epsilon lower bounds against it (docs/DP.md)."""
    guarantee = {"dp_epsilon": epsilon} | ({} if delta is None else {"dp_delta": delta})
    for v in variants:
        attack_rows = attack_rows + dp_violation_rows(attack_rows, v, epsilon)
        model_rows = model_rows + accounting_rows(v, "target", guarantee)
    return attack_rows, model_rows


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
    paths = RunPaths(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.rglob(".*.tmp"):  # half-written files of a killed run
        stale.unlink(missing_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    key = _forget_stale_outputs(cfg, paths)
    blind: dict[str, np.ndarray] | None = None  # no inputs, no blind baseline
    if cfg.logits_only:
        sets, displays = outputs_from_files(cfg, paths), {}
    else:
        sets, displays, blind = outputs_from_model(cfg, paths, progress)
    atomic_write_text(paths.inputs_key, key + "\n")  # the outputs now match them
    timings["outputs"] = time.perf_counter() - t0
    log.info("outputs: %s (%.1f s)", ", ".join(["original", *sets]), timings["outputs"])
    roles = ("target", "shadow") if cfg.has_shadow else ("target",)
    splits = {k: v for role in roles for k, v in role_splits(paths, role).items()}
    info: dict[str, dict] = {}
    t0 = time.perf_counter()
    for name in cfg.variants.names:
        if get_variant(name).posthoc:
            check_calibration_labels(paths, roles, name)
            info[name] = apply_posthoc(
                name,
                cfg.variants,
                paths,
                splits,
                seed=cfg.seed,
                batch_size=cfg.train.batch_size,
                roles=roles,
            )
    timings["calibration"] = time.perf_counter() - t0
    attack_rows: list[MetricRow] = []
    metric_rows: list[ModelRow] = []
    t0 = time.perf_counter()
    first_scores: dict[str, dict[str, np.ndarray]] = {}
    for v in cfg.variants.names:
        per_role = {role: read_role(paths, v, role, splits, list(sets)) for role in roles}
        rows, scores = evaluate_attacks(
            cfg.attacks,
            v,
            per_role["target"],
            per_role.get("shadow"),
            paths.variant_scores(v),
            seed=cfg.seed,
            baseline=blind,
            iid_sets=cfg.eval.iid_sets,
        )
        attack_rows += rows
        first_scores = first_scores or scores
        for role in roles:
            metric_rows += model_rows(v, role, per_role[role])
    if cfg.target.dp_epsilon is not None:  # the owner's guarantee against every bound
        attack_rows, metric_rows = with_guarantee(
            cfg.variants.names, attack_rows, metric_rows, cfg.target.dp_epsilon, cfg.target.dp_delta
        )
    timings["attacks"] = time.perf_counter() - t0
    log.info(
        "attacks and metrics: %d variants (%.1f s)", len(cfg.variants.names), timings["attacks"]
    )
    if displays and cfg.eval.gallery_size > 0:
        galleries(cfg, paths, displays, first_scores)
    result = RunResult(
        run_dir=run_dir,
        attack_rows=attack_rows,
        model_rows=metric_rows,
        variant_info=info,
        timings=timings,
    )
    import yaml

    doc = cfg.to_dict()
    if cfg.logits_only or cfg.shadow.source != "train":
        doc.pop("train")  # no model was trained: the report shows no training settings
    atomic_write_text(paths.config, yaml.safe_dump(doc, sort_keys=False))
    write_results(
        result, variants=cfg.variants.names, attacks=cfg.attacks.names, config=cfg.to_dict()
    )
    if report:
        from mistrust.report import build_report

        build_report(run_dir)
        log.info("report: %s", paths.report_html)
    return result


# ---- resume ---------------------------------------------------------------------------


def _inputs_key(cfg: AuditConfig) -> str:
    """Everything that changes an output: the data / model sections, each named file's
    size and modification time, and the code of each factory that builds a model."""
    from mistrust.models.external import factory_code

    doc = {k: cfg.to_dict()[k] for k in ("seed", "target", "shadow", "preprocess", "logits")}
    doc["code"] = {role: factory_code(*spec) for role, spec in _factories(cfg).items()}
    doc["eval"] = dataclasses.asdict(cfg.eval)
    doc["train"] = dataclasses.asdict(cfg.train)
    doc["laplace"] = "laplace" in cfg.variants.names
    stats = {}
    for path in _paths(doc):
        p = Path(path)
        stats[path] = [p.stat().st_size, p.stat().st_mtime_ns] if p.exists() else None
    doc["files"] = stats
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _factories(cfg: AuditConfig) -> dict[str, tuple[str, dict[str, Any]]]:
    """The factory and its arguments of each role's model that one builds (a shadow falls
    back on the target's, as :func:`mistrust.own_inputs.load_model` does)."""
    t, s = cfg.target, cfg.shadow
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    if cfg.logits_only:
        return out
    if t.factory is not None:
        out["target"] = (t.factory, dict(t.factory_args))
    factory = s.factory or t.factory
    if factory and (s.source == "train" or (s.source == "checkpoint" and s.weights)):
        out["shadow"] = (factory, dict(s.factory_args or t.factory_args))
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
