"""One run, end to end, into a run directory (docs/ARCHITECTURE.md, "One run").

config -> data & splits -> models -> outputs (once, cached) -> calibration
-> attacks & metrics -> results. Re-running the same command on the same
directory reuses every finished model and output, so a crashed run resumes.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from mistrust.calibration.variants import BASE, get_variant, private_settings
from mistrust.config import Config, save_config
from mistrust.data.bundle import Data
from mistrust.data.canaries import CANARIES, Canaries
from mistrust.data.evalsets import (
    EvalContext,
    EvalInputs,
    build_evalset,
    gan_generator,
    gan_is_cached,
)
from mistrust.data.sources import default_cache
from mistrust.data.splits import ROLES
from mistrust.io import atomic_savez, exclusive, load_npz
from mistrust.pipeline.blind import run_baseline
from mistrust.pipeline.finish import Members, finish_run
from mistrust.pipeline.scoring import score_variants
from mistrust.pipeline.timing import Timer
from mistrust.present.results import RunResult
from mistrust.runtime.devices import resolve_device
from mistrust.runtime.executors import Background, usable_cpus
from mistrust.runtime.paths import RunPaths
from mistrust.study.data import canary_sets, evalset_context, iid_sets, load_data, run_canaries
from mistrust.study.models import StudyJob, cache_outputs, train_study_models, trained_variants
from mistrust.training import OPTIMIZER_IMPORTS

log = logging.getLogger(__name__)


def _save_splits(paths: RunPaths, splits: dict[str, np.ndarray]) -> None:
    if paths.splits.is_file():
        old = load_npz(paths.splits)
        if old.keys() == splits.keys() and all(np.array_equal(old[k], splits[k]) for k in old):
            return
        log.warning("splits changed since the last run in this directory; outputs are recomputed")
        shutil.rmtree(paths.outputs_dir, ignore_errors=True)
    atomic_savez(paths.splits, **splits)


def _save_canaries(paths: RunPaths, canaries: Canaries | None) -> None:
    if canaries is None:
        paths.canaries.unlink(missing_ok=True)
    else:
        atomic_savez(paths.canaries, **canaries.arrays())


def _gan_beside_models(
    cfg: Config, names: list[str], ctx: EvalContext, device: torch.device
) -> Background | None:
    """Start training the ``gan`` set's generator in a process of its own, to run beside
    the model tasks (it holds one core, the 1-thread model tasks share the others), or
    None where the run has no such set, the set comes from a folder, the generator is
    already cached, or the models do not train here on more than one CPU. The GAN trains with one thread either way: the
    same bytes."""
    local_cpu = cfg.executor == "local" and device.type == "cpu" and usable_cpus() > 1
    if "gan" not in names or (ctx.folders and "gan" in ctx.folders) or not local_cpu:
        return None
    if gan_is_cached(ctx):  # loads in a moment: every core goes to the models
        return None
    log.debug("training the GAN beside the models")
    gan_ctx = dataclasses.replace(ctx, progress=False)
    return Background(_cache_gan, gan_ctx, threads=1, inherit=OPTIMIZER_IMPORTS)


def _cache_gan(ctx: EvalContext) -> None:
    """Background task: the fake set's generator, trained into its cache (the run then
    loads it from there; a module is not sent back through the pipe)."""
    gan_generator(ctx)


def _study_job(
    cfg: Config,
    data: Data,
    sets: dict[str, EvalInputs],
    paths: RunPaths,
    device: torch.device,
    progress: bool,
) -> StudyJob:
    """What every model task reads: the ``data`` and ``model`` sections, the training
    settings of each trained variant, each role's splits and the evaluation sets."""
    splits = {
        f"{role}_{split}": (data.train if split == "train" else data.test).subset(
            data.splits[f"{role}_{split}"]
        )
        for role in ROLES
        for split in ("train", "test")
    }
    inputs = {name: (s.x, s.labels) for name, s in sets.items()}
    local = cfg.executor == "local"
    trained = trained_variants(cfg.variants.names, reference=bool(cfg.reference.attacks))
    privacy = {v: p for v in trained if (p := private_settings(v, cfg.variants)) is not None}
    canaries = run_canaries(cfg.canaries.count, data, seed=cfg.seed)
    put_in = None
    if canaries is not None:  # every canary's outputs (target only), for the audit
        every, put_in = canary_sets(data, canaries)
        inputs[CANARIES] = (data.preprocess(every.images), every.labels)
    return StudyJob(
        cfg.data,
        cfg.model,
        {v: get_variant(v).train_config(cfg.train, cfg.variants) for v in trained},
        cfg.seed,
        cfg.train.eval_batch_size,
        paths,
        data.preprocess,
        data.num_classes,
        splits,
        inputs,
        str(device),
        progress and local,
        privacy,
        put_in,
    )


def _outputs_for(
    model: torch.nn.Module,
    role: str,
    data: Data,
    sets: dict[str, EvalInputs],
    paths: RunPaths,
    cfg: Config,
    device: torch.device,
) -> None:
    """Cache the base outputs of a model trained outside a study task (as a task does)."""
    job = _study_job(cfg, data, sets, paths, device, False)
    cache_outputs(model, job, BASE, role)


def run_experiment(
    cfg: Config, run_dir: Path, *, progress: bool = False, report: bool = True
) -> RunResult:
    """Run ``cfg`` into ``run_dir``; a second run on the same directory waits for the first.

    ``config.yaml`` is written with the results, so a run that fails or is killed
    leaves the previous ``config.yaml`` next to the results it describes. With
    ``report=False`` no ``report.html`` is built (``mistrust report`` builds it later).
    """
    with exclusive(run_dir, what=f"run directory {run_dir}"):
        return _run_locked(cfg, run_dir, progress=progress, report=report)


def run_seeds(
    cfg: Config, run_dir: Path, *, progress: bool = False, report: bool = True
) -> list[RunResult]:
    """Run the study ``cfg.seeds`` times, with seeds ``cfg.seed``, ``cfg.seed + 1``, ...

    Each repeat is a complete run into ``run_dir/seed-<seed>`` (resumable as any run);
    then ``run_dir`` gets ``config.yaml`` (with ``seeds``), the aggregate tables of
    :mod:`mistrust.present.repeats` and, unless ``report=False``, a ``report.html`` of them.
    """
    from mistrust.present.repeats import write_seed_results

    paths = RunPaths(run_dir)
    with exclusive(run_dir, what=f"run directory {run_dir}"):
        results = []
        for i in range(cfg.seeds):
            sub = dataclasses.replace(cfg, seed=cfg.seed + i, seeds=1)
            sub_dir = paths.seed_run(sub.seed).root
            log.info("seed %d (%d of %d): %s", sub.seed, i + 1, cfg.seeds, sub_dir)
            results.append(run_experiment(sub, sub_dir, progress=progress, report=report))
        write_seed_results(run_dir, [r.run_dir for r in results])
        save_config(cfg, paths.config)
        if paths.results_csv.is_file():
            log.warning(
                "%s also holds the results of a single-seed run (results.csv); they are left "
                "as they are, and `mistrust report` on it builds their report",
                run_dir,
            )
        if report:
            from mistrust.present.report.seeds import build_seeds_report

            log.info("report across seeds: %s", build_seeds_report(run_dir))
    return results


def _run_locked(cfg: Config, run_dir: Path, *, progress: bool, report: bool) -> RunResult:
    paths = RunPaths(run_dir).prepare()
    timer = Timer()
    device = resolve_device(cfg.device)
    stand_in = " (stand-in)" if cfg.data.stand_in else ""
    with timer.stage("data", say=f"data: {cfg.data.dataset}{stand_in}"):
        data = load_data(cfg.data, seed=cfg.seed)
        _save_splits(paths, data.splits)
        _save_canaries(paths, run_canaries(cfg.canaries.count, data, seed=cfg.seed))
    with timer.stage("evaluation sets", say=f"evaluation sets: {', '.join(cfg.eval.sets)}"):
        names, ctx = evalset_context(
            cfg.data,
            cfg.eval,
            cfg.variants.names,
            data,
            default_cache(),
            device,
            progress,
            seed=cfg.seed,
        )
        gan = _gan_beside_models(cfg, names, ctx, device)
        sets = {n: build_evalset(n, ctx) for n in names if gan is None or n != "gan"}
    variants = [get_variant(v) for v in cfg.variants.names]
    job = _study_job(cfg, data, sets, paths, device, progress)
    say = f"models: {', '.join(job.train)} x {', '.join(ROLES)} ({cfg.executor})"
    with timer.stage("models", say=say + (" and the GAN beside them" if gan else "")):
        try:
            train_times = train_study_models(
                job, executor=cfg.executor, address=cfg.ray_address, progress=progress
            )
            if gan is not None:  # the fake set, then its outputs (every other one is cached)
                gan.result()
                sets = {n: sets[n] if n in sets else build_evalset(n, ctx) for n in names}
                train_study_models(
                    _study_job(cfg, data, sets, paths, device, False),
                    executor=cfg.executor,
                    address=cfg.ray_address,
                    progress=False,
                )
        finally:
            if gan is not None:
                gan.cancel()
    set_names = list(cfg.eval.sets)
    scored = score_variants(
        variants,
        cfg.attacks,
        cfg.variants,
        paths,
        data.splits,
        ROLES,
        set_names,
        seed=cfg.seed,
        batch_size=cfg.train.batch_size,
        iid_sets=iid_sets(cfg.data, cfg.eval),
        baseline=lambda: run_baseline(data, sets, set_names, paths, seed=cfg.seed),
        timer=timer,
        here=device.type == "cuda",
        claimed=None,  # a DP variant's epsilon is its accountant's (models/<v>/<role>.dp.json)
    )
    attack_rows, blind = scored.attack_rows, scored.blind or {}
    if cfg.reference.attacks:
        from mistrust.pipeline.reference import add_reference_rows
        from mistrust.study.reference import reference_outputs

        r = cfg.reference
        say = f"reference: {r.n_models} models ({cfg.executor}), {', '.join(r.attacks)}"
        with timer.stage("reference", say=say):
            outs = reference_outputs(cfg, data, sets, paths, device=device, progress=progress)
            attack_rows = add_reference_rows(
                attack_rows,
                r,
                outs,
                list(cfg.eval.sets),
                paths,
                aupr=cfg.attacks.aupr,
                seed=cfg.seed,
                blind=blind,
                iid_sets=iid_sets(cfg.data, cfg.eval),
            )
    result = RunResult(
        run_dir=run_dir,
        attack_rows=attack_rows,
        model_rows=scored.model_rows,
        variant_info=scored.variant_info,
        timings=timer.seconds,
        train_times=train_times,
    )
    index = data.splits["target_members"]  # member rows of the scores, in this order
    return finish_run(
        paths,
        result,
        variants=cfg.variants.names,
        attacks=cfg.attacks.names,
        config=cfg.to_dict(),
        saved_config=cfg.to_dict(),
        displays={name: s.display for name, s in sets.items()},
        target_scores=scored.target_scores,
        members=Members(index, data.train.labels.numpy()[index], data.train.images),
        gallery_size=cfg.eval.gallery_size,
        timer=timer,
        report=report,
    )
