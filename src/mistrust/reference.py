"""Reference-model attacks (LiRA, RMIA) under the same OOD audit as the score-based attacks.

Stages, each resumable:

1. **Population and keep matrix** (``RUN/reference_keep.npz``). The population
   is the audited samples (the target's attack members, then its attack
   non-members) followed by the shadow training pool. Reference models come in
   complementary pairs on the audited samples (model ``2j`` trains on a random
   half, model ``2j+1`` on the other half; RMIA's "paired models"), so each
   audited sample is IN for exactly half of them (``n_models`` even). Each
   model is then filled up to ``population_size`` samples (default
   ``data.train_size``, the target's training size) with random shadow-pool
   samples. RMIA's population samples ``z`` are ``z_size`` shadow-pool samples
   (disjoint from the audited ones).
2. **Reference models** (``RUN/models/reference/<i>.pt``): the target's
   architecture and training config (``reference.epochs`` if set), trained by
   :func:`mistrust.modeling.train_or_load` under the role ``reference-<i>-<digest
   of its training set>`` with seed ``seed + 1000 + i``, one executor task per
   model (:func:`mistrust.executors.run_tasks`, local or Ray). A finished model
   is reused; an interrupted one resumes from its epoch checkpoint.
3. **Outputs**, once per model (``RUN/outputs/reference/<i>/<dataset>.npz``):
   ``population`` (every population sample) and every OOD evaluation set
   (``-flip`` variants with ``reference.augment_queries``). The target's outputs
   come from ``target_dir`` (as for the other attacks) plus, cached under
   ``RUN/outputs/reference/target/``, the ``z`` samples and flipped queries.
4. **Scores and rows**: ``RUN/scores/base/<attack>/<dataset>.npz`` and tidy
   rows with the metrics of :func:`mistrust.metrics.attack_metrics`.

OOD sets: no reference model trained on an OOD sample, so there are no IN
statistics for it. On every set other than ``original``, the online attacks
therefore score the whole pair (members and OOD non-members alike) with their
offline counterpart and its operating point; those rows carry
``offline_on_ood = 1.0`` (``0.0`` on ``original``), and their numbers equal the
offline attack's. The label of a sample without one (OOD sets other than the
perturbed originals) is the target's predicted class, for the target and the
reference models alike, as for the score-based attacks
(:func:`mistrust.evaluate.attack_labels`). That choice favours "member": the
target is confident in its own argmax by construction, the reference models
need not be.

Operating point ("predicted"): there is no shadow model, but the reference
models are shadows whose membership is known. Each reference model ``k`` in
turn plays the target, scored with the statistics of the other ``n_models - 1``
on the population samples that are not ``z``; the threshold maximising
TPR - FPR on those pooled scores (the rule of the paper's threshold attack,
:func:`mistrust.metrics.oracle_threshold`) is kept, and "member" means
``score >= threshold`` (row ``shadow / operating_score``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mistrust.attacks import REFERENCE_ATTACKS, signals
from mistrust.attacks.lira import lira_offline, lira_online
from mistrust.attacks.rmia import rmia_prior, rmia_ratio, rmia_scores
from mistrust.auditing import MetricRow
from mistrust.config import Config, ConfigError, TrainConfig, check_reference_config
from mistrust.data.bundle import Data
from mistrust.data.evalsets import EvalInputs
from mistrust.data.images import ImageSet, Preprocess
from mistrust.data.splits import positions
from mistrust.executors import run_tasks, training_resources
from mistrust.io import atomic_savez, atomic_write_text
from mistrust.metrics import attack_metrics, oracle_threshold
from mistrust.outputs import Outputs, cached, compute_outputs

log = logging.getLogger(__name__)

__all__ = [
    "REFERENCE_ATTACKS",
    "Population",
    "check_reference_config",
    "make_population",
    "reference_attack_rows",
    "train_reference_model",
]

_SEED_OFFSET = 1000  # reference model i trains with seed + 1000 + i (target: seed, shadow: seed+1)
_KEEP_STREAM = 0x5EF  # seeds the keep matrix: np.random.default_rng([seed, _KEEP_STREAM, ...])


@dataclass
class Population:
    """Who is in the reference population and which model trains on whom.

    Rows ``[0, n_members)`` are the target's attack members, ``[n_members,
    n_audited)`` its attack non-members, the rest the shadow training pool.
    """

    source: np.ndarray  # (P,) int64: 0 = train pool, 1 = test pool
    index: np.ndarray  # (P,) int64 index into that pool
    n_members: int
    n_audited: int
    keep: np.ndarray  # (M, P) bool: model m trains on row p
    z: np.ndarray  # (Z,) int64 rows used as RMIA population samples (sorted)

    def save(self, path: Path) -> None:
        atomic_savez(
            path,
            source=self.source,
            index=self.index,
            keep=self.keep,
            z=self.z,
            n_members=np.int64(self.n_members),
            n_audited=np.int64(self.n_audited),
        )

    def digest(self, m: int) -> str:
        """Short hash of model ``m``'s training samples (part of its fingerprint)."""
        rows = np.flatnonzero(self.keep[m])
        key = np.stack([self.source[rows], self.index[rows]]).astype(np.int64).tobytes()
        return hashlib.sha256(key).hexdigest()[:10]


def make_population(
    splits: dict[str, np.ndarray], *, n_models: int, population_size: int, z_size: int, seed: int
) -> Population:
    """The population, paired keep matrix and ``z`` samples (module docstring, stage 1)."""
    members, nonmembers = splits["target_members"], splits["target_nonmembers"]
    pool = splits["shadow_train"]
    source = np.concatenate(
        [np.zeros(len(members)), np.ones(len(nonmembers)), np.zeros(len(pool))]
    ).astype(np.int64)
    index = np.concatenate([members, nonmembers, pool]).astype(np.int64)
    a, s = len(members) + len(nonmembers), len(pool)
    lo, hi = (a + 1) // 2, a // 2 + s
    if not lo <= population_size <= hi:
        raise ConfigError(
            f"reference.population_size ({population_size}) must lie between half the audited "
            f"samples ({lo}) and that plus the shadow pool ({hi})"
        )
    keep = np.zeros((n_models, a + s), bool)
    # one generator per pair / model / purpose: adding models later keeps the existing ones
    for m in range(0, n_models, 2):
        rng = np.random.default_rng([seed, _KEEP_STREAM, 0, m // 2])
        half = np.zeros(a, bool)
        half[rng.permutation(a)[: a // 2 + (m // 2) % 2 * (a % 2)]] = True  # alternate odd a
        keep[m, :a] = half
        if m + 1 < n_models:
            keep[m + 1, :a] = ~half
    for m in range(n_models):
        rng = np.random.default_rng([seed, _KEEP_STREAM, 1, m])
        need = population_size - int(keep[m, :a].sum())
        keep[m, a + rng.choice(s, size=max(need, 0), replace=False)] = True
    if z_size > s:
        log.warning("reference.z_size (%d) exceeds the shadow pool (%d); using %d", z_size, s, s)
    rng = np.random.default_rng([seed, _KEEP_STREAM, 2])
    z = np.sort(a + rng.permutation(s)[: min(z_size, s)]).astype(np.int64)
    return Population(source, index, len(members), a, keep, z)


@dataclass
class ReferenceJob:
    """What every reference-training task needs (put once into Ray's object store)."""

    cfg: Config
    tcfg: TrainConfig
    run_dir: str
    preprocess: Preprocess
    num_classes: int
    images: torch.Tensor  # (P, C, H, W) uint8, the population
    labels: torch.Tensor  # (P,) int64
    queries: dict[str, tuple[torch.Tensor, torch.Tensor]]  # OOD set -> (x float, labels)
    flip: bool
    device: str
    progress: bool


def _outputs_of(
    model: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    prep: Callable[[torch.Tensor], torch.Tensor],
    bs: int,
    device: str,
) -> Outputs:
    """Logits and labels (no features, to keep many models' files small), in chunks."""
    chunk = max(bs, 4096)
    parts = [
        compute_outputs(
            model, prep(images[i : i + chunk]), labels[i : i + chunk], batch_size=bs, device=device
        )
        for i in range(0, len(images), chunk)
    ]
    if not parts:
        raise ValueError("cannot compute outputs of an empty input set")
    return Outputs(
        np.concatenate([p.logits for p in parts]), np.concatenate([p.labels for p in parts])
    )


def _logits_only(out: Outputs) -> Outputs:
    return Outputs(out.logits, out.labels)


def _cached(path: Path, n: int, compute: Callable[[], Outputs]) -> Outputs:
    """:func:`mistrust.outputs.cached`, recomputed when the row count no longer matches."""
    out = cached(path, compute)
    if len(out) != n:
        log.warning("recomputing %s: %d rows cached, %d expected", path, len(out), n)
        out = compute()
        out.save(path)
    return out


def _flipped(pre: Preprocess) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: pre(x).flip(-1)


def train_reference_model(job: ReferenceJob, task: tuple[int, np.ndarray, str]) -> dict[str, Any]:
    """Executor task: train (or reuse) reference model ``i`` and cache its outputs.

    task: ``(i, rows (K,) of the population it trains on, digest of those rows)``.
    Returns metadata: ``index``, ``trained`` (now), ``train_seconds``, ``train_accuracy``.
    """
    from mistrust.modeling import train_or_load

    i, rows, digest = task
    run_dir = Path(job.run_dir)
    rows_t = torch.as_tensor(rows, dtype=torch.long)
    subset = ImageSet(job.images[rows_t], job.labels[rows_t], [], f"reference-{i}")
    model, meta, fresh = train_or_load(
        job.cfg.data,
        job.cfg.model,
        job.tcfg,
        role=f"reference-{i}-{digest}",
        train_set=subset,
        preprocess=job.preprocess,
        num_classes=job.num_classes,
        model_path=run_dir / "models" / "reference" / f"{i}.pt",
        seed=job.cfg.seed + _SEED_OFFSET + i,
        device=torch.device(job.device),
        progress=job.progress,
    )
    out_dir = run_dir / "outputs" / "reference" / str(i)
    if fresh:
        shutil.rmtree(out_dir, ignore_errors=True)
    bs, pre, dev = job.cfg.train.eval_batch_size, job.preprocess, job.device
    n = len(job.images)
    _cached(
        out_dir / "population.npz",
        n,
        lambda: _outputs_of(model, job.images, job.labels, pre, bs, dev),
    )
    if job.flip:
        _cached(
            out_dir / "population-flip.npz",
            n,
            lambda: _outputs_of(model, job.images, job.labels, _flipped(pre), bs, dev),
        )
    for name, (x, labels) in job.queries.items():
        _cached(
            out_dir / f"{name}.npz",
            len(x),
            lambda x=x, y=labels: _logits_only(
                compute_outputs(model, x, y, batch_size=bs, device=dev)
            ),
        )
        if job.flip:
            _cached(
                out_dir / f"{name}-flip.npz",
                len(x),
                lambda x=x, y=labels: _logits_only(
                    compute_outputs(model, x.flip(-1), y, batch_size=bs, device=dev)
                ),
            )
    acc = meta.get("train_accuracy") or [float("nan")]
    return {
        "index": i,
        "trained": fresh,
        "train_seconds": float(meta.get("train_seconds", 0.0)),
        "train_accuracy": float(acc[-1]),
    }


# --- signals ---------------------------------------------------------------------------------


@dataclass
class _Signals:
    """LiRA's ``phi`` ``(n, M, Q)`` / ``(n, Q)`` and RMIA's ``p_y`` ``(n, M)`` / ``(n,)`` per
    dataset key (``population`` or an OOD set), for the reference models and the target."""

    ref_phi: dict[str, np.ndarray]
    ref_prob: dict[str, np.ndarray]
    target_phi: dict[str, np.ndarray]  # "audited" and OOD sets
    target_prob: dict[str, np.ndarray]  # "audited", "z" and OOD sets


def _phi_prob(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (signals.logit_confidence(logits, labels), np.exp(-signals.loss(logits, labels)))


def _load_signals(
    run_dir: Path, n_models: int, keys: dict[str, np.ndarray], queries: list[str]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Reference ``phi (n, M, Q)`` and ``prob (n, M)`` per key; ``keys``: key -> labels."""
    phi = {k: np.empty((len(y), n_models, len(queries))) for k, y in keys.items()}
    prob = {k: np.empty((len(y), n_models)) for k, y in keys.items()}
    for m in range(n_models):
        for k, labels in keys.items():
            for q, suffix in enumerate(queries):
                out = Outputs.load(run_dir / "outputs" / "reference" / str(m) / f"{k}{suffix}.npz")
                phi[k][:, m, q], p = _phi_prob(out.logits, labels)
                if q == 0:
                    prob[k][:, m] = p
    return phi, prob


# --- scoring ---------------------------------------------------------------------------------


def _score(
    attack: str,
    *,
    online: bool,
    cfg: Config,
    t_x: np.ndarray,
    ref_x: np.ndarray,
    in_x: np.ndarray,
    t_z: np.ndarray | None = None,
    ref_z: np.ndarray | None = None,
    in_z: np.ndarray | None = None,
) -> np.ndarray:
    """One attack's scores. LiRA: ``t_x (n, Q)``, ``ref_x (n, M, Q)``; RMIA: probabilities
    ``t_x (n,)``, ``ref_x (n, M)`` and the same for ``z``. ``in_*``: ``(n, M)`` IN masks."""
    r = cfg.reference
    if attack.startswith("lira"):
        if online:
            return lira_online(t_x, ref_x, in_x, fixed_variance=r.fixed_variance)
        return lira_offline(t_x, ref_x, ~in_x, fixed_variance=r.fixed_variance)
    if t_z is None or ref_z is None or in_z is None:
        raise ValueError("RMIA needs the population samples z")
    if online:
        prior_x, prior_z = rmia_prior(ref_x), rmia_prior(ref_z)
    else:
        prior_x = rmia_prior(ref_x, ~in_x, a=r.rmia_a)
        prior_z = rmia_prior(ref_z, ~in_z, a=r.rmia_a)
    return rmia_scores(rmia_ratio(t_x, prior_x), rmia_ratio(t_z, prior_z), gamma=r.rmia_gamma)


def _calibrate(attack: str, *, online: bool, cfg: Config, pop: Population, sig: _Signals) -> float:
    """Operating threshold: each reference model plays the target once (module docstring)."""
    lira = attack.startswith("lira")
    ref = sig.ref_phi["population"] if lira else sig.ref_prob["population"]
    n_in = pop.keep.sum(axis=0)
    rows = np.setdiff1d(np.flatnonzero((n_in > 0) & (n_in < len(pop.keep))), pop.z)
    scores, members = [], []
    for k in range(pop.keep.shape[0]):
        others = np.delete(np.arange(pop.keep.shape[0]), k)
        keep = pop.keep[others].T  # (P, M-1)
        kw: dict[str, Any] = {}
        if not lira:
            kw = {"t_z": ref[pop.z, k], "ref_z": ref[pop.z][:, others], "in_z": keep[pop.z]}
        scores.append(
            _score(
                attack,
                online=online,
                cfg=cfg,
                t_x=ref[rows, k],
                ref_x=ref[rows][:, others],
                in_x=keep[rows],
                **kw,
            )
        )
        members.append(pop.keep[k, rows])
    return oracle_threshold(np.concatenate(scores), np.concatenate(members))


def _attack_set(
    attack: str, ds: str, *, cfg: Config, pop: Population, sig: _Signals
) -> tuple[np.ndarray, bool]:
    """Scores of the target's members paired with set ``ds``; and whether it ran online."""
    lira, nm, a = attack.startswith("lira"), pop.n_members, pop.n_audited
    online = attack.endswith("online") and ds == "original"
    keep = pop.keep.T  # (P, M)
    t = sig.target_phi if lira else sig.target_prob
    ref = (sig.ref_phi if lira else sig.ref_prob)["population"]
    if ds == "original":
        t_x, ref_x, in_x = t["audited"], ref[:a], keep[:a]
    else:
        ood = (sig.ref_phi if lira else sig.ref_prob)[ds]
        t_x = np.concatenate([t["audited"][:nm], t[ds]])
        ref_x = np.concatenate([ref[:nm], ood])
        in_x = np.concatenate([keep[:nm], np.zeros(ood.shape[:2], bool)])
    kw: dict[str, Any] = {}
    if not lira:
        kw = {"t_z": t["z"], "ref_z": ref[pop.z], "in_z": keep[pop.z]}
    return _score(attack, online=online, cfg=cfg, t_x=t_x, ref_x=ref_x, in_x=in_x, **kw), online


# --- entry point -----------------------------------------------------------------------------


def _population_images(data: Data, pop: Population) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``(P, C, H, W)`` and labels ``(P,)`` of the population rows."""
    train = torch.as_tensor(pop.source == 0)
    images = torch.empty((len(pop.index), *data.train.images.shape[1:]), dtype=torch.uint8)
    labels = torch.empty(len(pop.index), dtype=torch.long)
    idx = torch.as_tensor(pop.index)
    images[train], labels[train] = data.train.images[idx[train]], data.train.labels[idx[train]]
    images[~train], labels[~train] = data.test.images[idx[~train]], data.test.labels[idx[~train]]
    return images, labels


def _target_extra(
    cfg: Config,
    run_dir: Path,
    pop: Population,
    images: torch.Tensor,
    labels: torch.Tensor,
    queries: dict[str, tuple[torch.Tensor, torch.Tensor]],
    pre: Preprocess,
    device: torch.device,
) -> dict[str, Outputs]:
    """Target outputs that ``target_dir`` lacks: ``z`` and, with flips, ``audited-flip`` and
    ``<set>-flip``; cached under ``RUN/outputs/reference/target`` (cleared on a new target)."""
    from mistrust.modeling import load_model

    model, meta = load_model(
        run_dir / "models" / "base" / "target.pt", cfg.model, stand_in=cfg.data.stand_in
    )
    model.to(device)
    out_dir = run_dir / "outputs" / "reference" / "target"
    marker = out_dir / "fingerprint.txt"
    if not marker.is_file() or marker.read_text() != meta["fingerprint"]:
        shutil.rmtree(out_dir, ignore_errors=True)
        atomic_write_text(marker, meta["fingerprint"])
    bs, dev, a = cfg.train.eval_batch_size, str(device), pop.n_audited
    z = torch.as_tensor(pop.z)
    out = {
        "z": _cached(
            out_dir / "z.npz",
            len(z),
            lambda: _outputs_of(model, images[z], labels[z], pre, bs, dev),
        )
    }
    if cfg.reference.augment_queries:
        out["audited-flip"] = _cached(
            out_dir / "audited-flip.npz",
            a,
            lambda: _outputs_of(model, images[:a], labels[:a], _flipped(pre), bs, dev),
        )
        for name, (x, y) in queries.items():
            out[f"{name}-flip"] = _cached(
                out_dir / f"{name}-flip.npz",
                len(x),
                lambda x=x, y=y: _logits_only(
                    compute_outputs(model, x.flip(-1), y, batch_size=bs, device=dev)
                ),
            )
    return out


def reference_attack_rows(
    cfg: Config,
    data: Data,
    sets: dict[str, EvalInputs],
    run_dir: Path,
    target_dir: Path,
    *,
    device: torch.device | str,
    progress: bool,
) -> list[MetricRow]:
    """Train (or reuse) the reference models and run ``cfg.reference.attacks`` on every set.

    Args:
        cfg: the run's config (``reference`` section; ``eval.sets`` names the sets scored).
        data: :class:`mistrust.data.bundle.Data` (pools, preprocess, splits).
        sets: evaluation inputs by name (every OOD name of ``eval.sets``; ``original``
            is taken from the test pool).
        run_dir: the run directory; the base target model must exist at
            ``models/base/target.pt``.
        target_dir: the base target's outputs (``train.npz``, ``test.npz``, ``<set>.npz``).
        device: where models train and run.
        progress: progress bars.

    Returns:
        tidy :class:`~mistrust.auditing.MetricRow` ``("base", attack, dataset, metric,
        value)``: the :data:`mistrust.metrics.METRIC_KEYS` per attack and set,
        ``offline_on_ood`` for the online attacks, and ``("base", attack, "shadow",
        "operating_score", t)``.
        Writes ``scores/base/<attack>/<set>.npz`` (score, is_member, predicted, max_score).
    """
    from mistrust.evaluate import attack_labels

    check_reference_config(cfg)
    r = cfg.reference
    if not r.attacks:
        return []
    run_dir, target_dir, device = Path(run_dir), Path(target_dir), torch.device(device)
    set_names = list(cfg.eval.sets)
    ood = [n for n in set_names if n != "original"]
    missing = [n for n in ood if n not in sets]
    if missing:
        raise ValueError(f"evaluation sets {missing} are in eval.sets but were not passed")
    pop = make_population(
        data.splits,
        n_models=r.n_models,
        z_size=r.z_size,
        seed=cfg.seed,
        population_size=r.population_size or cfg.data.train_size,
    )
    pop.save(run_dir / "reference_keep.npz")
    images, labels = _population_images(data, pop)
    queries = {n: (sets[n].x, sets[n].labels) for n in ood}
    job = ReferenceJob(
        cfg,
        dataclasses.replace(cfg.train, epochs=r.epochs or cfg.train.epochs),
        str(run_dir),
        data.preprocess,
        data.num_classes,
        images,
        labels,
        queries,
        r.augment_queries,
        str(device),
        progress and cfg.executor == "local",
    )
    tasks = [(i, np.flatnonzero(pop.keep[i]), pop.digest(i)) for i in range(r.n_models)]
    metas = run_tasks(
        train_reference_model,
        tasks,
        shared=job,
        executor=cfg.executor,
        address=cfg.ray_address,
        **training_resources(str(device)),
        progress=progress,
        desc="reference models",
    )
    log.debug(
        "reference models: %d trained, %d reused",
        sum(m["trained"] for m in metas),
        sum(not m["trained"] for m in metas),
    )

    train, test = Outputs.load(target_dir / "train.npz"), Outputs.load(target_dir / "test.npz")
    sp = data.splits
    members = train.subset(positions(sp["target_train"], sp["target_members"]))
    nonmembers = test.subset(positions(sp["target_test"], sp["target_nonmembers"]))
    target_sets = {n: Outputs.load(target_dir / f"{n}.npz") for n in ood}
    extra = _target_extra(cfg, run_dir, pop, images, labels, queries, data.preprocess, device)
    pop_labels = labels.numpy()
    audited_logits = np.concatenate([members.logits, nonmembers.logits])
    keys = {"population": pop_labels, **{n: attack_labels(target_sets[n]) for n in ood}}
    flips = ["", "-flip"] if r.augment_queries else [""]
    ref_phi, ref_prob = _load_signals(run_dir, r.n_models, keys, flips)
    t_phi, t_prob = {}, {"z": _phi_prob(extra["z"].logits, pop_labels[pop.z])[1]}
    for key, logits in [("audited", audited_logits), *[(n, target_sets[n].logits) for n in ood]]:
        y = pop_labels[: pop.n_audited] if key == "audited" else keys[key]
        phis = [_phi_prob(logits, y)]
        if r.augment_queries:
            phis.append(_phi_prob(extra[f"{key}-flip"].logits, y))
        t_phi[key] = np.stack([p[0] for p in phis], axis=1)
        t_prob[key] = phis[0][1]
    sig = _Signals(ref_phi, ref_prob, t_phi, t_prob)

    rows: list[MetricRow] = []
    thresholds: dict[tuple[str, bool], float] = {}
    for attack in r.attacks:
        for ds in set_names:
            score, online = _attack_set(attack, ds, cfg=cfg, pop=pop, sig=sig)
            key = (attack.split("-")[0], online)
            if key not in thresholds:
                thresholds[key] = _calibrate(attack, online=online, cfg=cfg, pop=pop, sig=sig)
            predicted = score >= thresholds[key]
            nm = nonmembers if ds == "original" else target_sets[ds]
            logits = np.concatenate([members.logits, nm.logits])
            is_member = np.r_[np.ones(len(members), bool), np.zeros(len(nm), bool)]
            top = signals.max_score(logits)
            atomic_savez(
                run_dir / "scores" / "base" / attack / f"{ds}.npz",
                score=score,
                is_member=is_member,
                predicted=predicted,
                max_score=top,
            )
            metrics = attack_metrics(
                score, is_member, predicted, max_score=top, aupr=cfg.attacks.aupr
            )
            rows += [MetricRow("base", attack, ds, k, float(v)) for k, v in metrics.items()]
            if attack.endswith("online"):
                rows.append(MetricRow("base", attack, ds, "offline_on_ood", 0.0 if online else 1.0))
        own = (attack.split("-")[0], attack.endswith("online"))
        if own in thresholds and np.isfinite(thresholds[own]):
            rows.append(
                MetricRow("base", attack, "shadow", "operating_score", float(thresholds[own]))
            )
    return rows
