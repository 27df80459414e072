"""The scoring half of the reference attacks (LiRA, RMIA), shared by both drivers.

``mistrust run`` trains its reference models (:mod:`mistrust.study.reference`);
``mistrust audit`` reads their outputs from the user's files
(:mod:`mistrust.own.reference`). From there on both run this module, so the same models
give the same numbers whichever door they came through:

1. **Signals**: per family of the configured attacks, each reference model's and the
   target's signal (``ReferenceAttack.signal``) on the population and every OOD set.
2. **Scores and rows**: each attack, fitted on the reference population (its
   leave-one-out operating point), scores the target's members paired with each set:
   ``RUN/scores/base/<attack>/<dataset>.npz`` and the rows of
   :func:`mistrust.metrics.attack_metrics`.
3. **Checks and verdicts**: the trust checks of each attack from its saved scores, then
   every verdict of the base variant decided again with the reference attacks in the Holm
   family (:func:`mistrust.checks.assemble.add_verdicts`).

The rules (perturbed copies keep their source's IN / OUT models, online attacks scored
offline on other OOD sets, flipped queries, one attack per set pair) are documented in
:mod:`mistrust.study.reference`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from mistrust.attacks import signals
from mistrust.attacks.reference import (
    ReferenceAttack,
    create_reference_attack,
    offline_counterpart,
    reference_attack_class,
)
from mistrust.attacks.reference.base import split_name
from mistrust.calibration.variants import BASE
from mistrust.checks.assemble import add_verdicts, check_rows
from mistrust.checks.ranking import GAP_KEYS, RUNNER_UP, STRONGEST, strongest_rows
from mistrust.data.population import Population
from mistrust.io import atomic_savez, load_npz
from mistrust.metrics import attack_metrics
from mistrust.rows import MetricRow
from mistrust.runtime.paths import RunPaths

__all__ = [
    "ReferenceOptions",
    "ReferenceOutputs",
    "add_reference_rows",
    "read_signals",
    "reference_rows",
    "scored_as",
]

Family = type[ReferenceAttack]

#: reference model, dataset key (``population`` or an OOD set), flipped query -> ``(n, C)``
RefLogits = Callable[[int, str, bool], np.ndarray]


class ReferenceOptions(Protocol):
    """The settings this stage reads (the ``reference`` section of either config)."""

    attacks: list[str]
    fixed_variance: bool
    rmia_a: float
    rmia_gamma: float


@dataclass
class ReferenceOutputs:
    """Everything the scoring reads: the population, the reference models' outputs and
    the target's.

    ``target``: the target's logits ``audited`` (members then non-members, the first
    ``pop.n_audited`` population rows), ``z`` (on ``pop.z``; RMIA), each OOD set and, with
    ``flip``, ``audited-flip`` and ``<set>-flip``. ``set_labels``: each OOD set's labels as
    the attacks read them (the target's predicted class where none applies).
    ``sources``: per OOD set, the audited non-member each row is a copy of, or None.
    """

    pop: Population
    labels: np.ndarray  # (P,) population labels
    ref_logits: RefLogits
    n_models: int
    target: Mapping[str, np.ndarray]
    set_labels: Mapping[str, np.ndarray]
    sources: Mapping[str, np.ndarray | None]
    flip: bool


@dataclass
class _Signals:
    """Per family, its signal per dataset key (``population`` or an OOD set) of the reference
    models ``(n, M, Q)`` and of the target ``(n, Q)`` (a family that takes the unflipped
    query alone: ``(n, M)`` and ``(n,)``; ``ReferenceAttack.queries``). The target's keys:
    ``audited``, the OOD sets and, for a family that ``needs_z``, ``z``."""

    ref: dict[str, dict[str, np.ndarray]]
    target: dict[str, dict[str, np.ndarray]]


def _families(names: list[str]) -> dict[str, Family]:
    """The families of the attacks ``names``, by family name, in the order first named."""
    classes = [reference_attack_class(n) for n in names]
    return {cls.family: cls for cls in classes}


def read_signals(
    ref_logits: RefLogits,
    n_models: int,
    keys: dict[str, np.ndarray],
    flips: list[bool],
    families: dict[str, Family],
) -> dict[str, dict[str, np.ndarray]]:
    """Per family, the reference models' signal per key: ``(n, M, Q)`` for a family that
    takes every query, ``(n, M)`` for one that takes the first; ``keys``: key -> labels;
    ``flips``: per query, whether it is the flipped one (``[False]`` or ``[False, True]``).
    One model's logits at a time: the outputs of every model need not fit in memory."""
    q_of = {f: len(flips) if cls.queries else 1 for f, cls in families.items()}
    ref = {f: {k: np.empty((len(y), n_models, q_of[f])) for k, y in keys.items()} for f in families}
    for m in range(n_models):
        for k, labels in keys.items():
            for q, flip in enumerate(flips):
                logits = ref_logits(m, k, flip)
                for f, cls in families.items():
                    if q < q_of[f]:
                        ref[f][k][:, m, q] = cls.signal(logits, labels)
    # one query: (n, M), the same C-ordered values as (n, M, 1)
    return {
        f: {k: v if families[f].queries else v[:, :, 0] for k, v in per_key.items()}
        for f, per_key in ref.items()
    }


def _signals(outs: ReferenceOutputs, ood: list[str], families: dict[str, Family]) -> _Signals:
    pop, t = outs.pop, outs.target
    keys = {"population": outs.labels, **{n: outs.set_labels[n] for n in ood}}
    flips = [False, True] if outs.flip else [False]
    ref_sig = read_signals(outs.ref_logits, outs.n_models, keys, flips, families)
    target_sig: dict[str, dict[str, np.ndarray]] = {f: {} for f in families}
    for f, cls in families.items():
        if cls.needs_z:
            target_sig[f]["z"] = cls.signal(t["z"], outs.labels[pop.z])
    for key in ["audited", *ood]:
        y = outs.labels[: pop.n_audited] if key == "audited" else keys[key]
        logits = t[key]
        queries = [logits, *([t[f"{key}-flip"]] if outs.flip else [])]
        for f, cls in families.items():
            if cls.queries:
                target_sig[f][key] = np.stack([cls.signal(x, y) for x in queries], axis=1)
            else:
                target_sig[f][key] = cls.signal(logits, y)
    return _Signals(ref_sig, target_sig)


def _attack_set(
    attack: ReferenceAttack,
    ds: str,
    *,
    pop: Population,
    sig: _Signals,
    source: np.ndarray | None = None,
) -> np.ndarray:
    """Scores of the target's members paired with set ``ds`` (fitted ``attack``).

    ``source``: ``(n,)`` for a set of copies of the audited non-members: row i is a copy
    of non-member ``source[i]`` and has that non-member's IN / OUT models; None: every
    reference model is OUT for every row of the set.
    """
    nm, a = pop.n_members, pop.n_audited
    keep = pop.in_mask  # (P, M)
    t, refs = sig.target[attack.family], sig.ref[attack.family]
    ref = refs["population"]
    if ds == "original":
        t_x, ref_x, in_x = t["audited"], ref[:a], keep[:a]
    else:
        ood = refs[ds]
        t_x = np.concatenate([t["audited"][:nm], t[ds]])
        ref_x = np.concatenate([ref[:nm], ood])
        if source is None:
            ood_in = np.zeros(ood.shape[:2], bool)
        else:
            ood_in = keep[nm + source]
        in_x = np.concatenate([keep[:nm], ood_in])
    return attack.score(t_x, ref_x, in_x, target_z=t["z"] if attack.needs_z else None)


def _set_rows(
    name: str,
    ds: str,
    *,
    attack: ReferenceAttack,
    online: bool,
    pop: Population,
    sig: _Signals,
    source: np.ndarray | None,
    logits: np.ndarray,
    n_members: int,
    out: Path,
    aupr: str,
) -> list[MetricRow]:
    """Score set ``ds`` for the configured attack ``name`` with the fitted ``attack`` (its
    offline counterpart where ``name`` cannot run online), save ``out`` and return the rows.

    ``logits``: the target's ``(N, C)`` on the members then the set's non-members.
    """
    score = _attack_set(attack, ds, pop=pop, sig=sig, source=source)
    predicted = attack.decide(score)
    is_member = np.r_[np.ones(n_members, bool), np.zeros(len(logits) - n_members, bool)]
    top = signals.max_score(logits)
    atomic_savez(out, score=score, is_member=is_member, predicted=predicted, max_score=top)
    metrics = attack_metrics(score, is_member, predicted, max_score=top, aupr=aupr)
    rows = [MetricRow("base", name, ds, k, float(v)) for k, v in metrics.items()]
    if split_name(name)[1]:
        rows.append(MetricRow("base", name, ds, "offline_on_ood", 0.0 if online else 1.0))
    return rows


def scored_as(name: str, ds: str, source: np.ndarray | None) -> str:
    """The attack that scores set ``ds`` for the configured attack ``name``: ``name`` itself,
    except an online attack on an OOD set that is not a copy of audited non-members
    (``source`` None), where no reference model is IN: there its offline counterpart scores
    the whole pair, members and the set's rows alike."""
    if ds == "original" or source is not None:
        return name
    return offline_counterpart(name)


def _fitted(name: str, r: ReferenceOptions, pop: Population, sig: _Signals) -> ReferenceAttack:
    """The attack ``name`` fitted on the reference population (its operating point)."""
    # every option of the reference section; each family takes those it knows
    attack = create_reference_attack(
        name, fixed_variance=r.fixed_variance, rmia_a=r.rmia_a, rmia_gamma=r.rmia_gamma
    )
    return attack.fit(sig.ref[attack.family]["population"], pop.in_mask, z=pop.z)


def reference_rows(
    r: ReferenceOptions,
    outs: ReferenceOutputs,
    set_names: Sequence[str],
    paths: RunPaths,
    *,
    aupr: str,
) -> list[MetricRow]:
    """Run ``r.attacks`` on every set of ``set_names`` (``original`` first or not at all).

    Returns tidy rows ``("base", attack, dataset, metric, value)``: the
    :data:`mistrust.metrics.METRIC_KEYS` per attack and set, ``offline_on_ood`` for the
    online attacks and ``("base", attack, "shadow", "operating_score", t)``. Writes
    ``scores/base/<attack>/<set>.npz`` (score, is_member, predicted, max_score).
    """
    if not r.attacks:
        return []
    pop, t = outs.pop, outs.target
    ood = [n for n in set_names if n != "original"]
    families = _families([offline_counterpart(n) for n in r.attacks])
    sig = _signals(outs, ood, families)
    members = t["audited"][: pop.n_members]
    nonmembers = {"original": t["audited"][pop.n_members : pop.n_audited]}
    nonmembers.update({n: t[n] for n in ood})
    rows: list[MetricRow] = []
    fitted: dict[str, ReferenceAttack] = {}
    for name in r.attacks:
        for ds in set_names:
            run_as = scored_as(name, ds, outs.sources.get(ds))
            online = split_name(name)[1] and run_as == name
            if run_as not in fitted:
                fitted[run_as] = _fitted(run_as, r, pop, sig)
            rows += _set_rows(
                name,
                ds,
                attack=fitted[run_as],
                online=online,
                pop=pop,
                sig=sig,
                source=outs.sources.get(ds),
                logits=np.concatenate([members, nonmembers[ds]]),
                n_members=len(members),
                out=paths.scores(BASE, name, ds),
                aupr=aupr,
            )
        if name in fitted and np.isfinite(fitted[name].operating_score_):
            rows.append(
                MetricRow("base", name, "shadow", "operating_score", fitted[name].operating_score_)
            )
    return rows


def reference_checks(
    attacks: Sequence[str],
    set_names: Sequence[str],
    paths: RunPaths,
    *,
    seed: int,
    blind: Mapping[str, np.ndarray] | None,
    iid_sets: Collection[str],
) -> list[MetricRow]:
    """The trust checks of the reference attacks, from their saved scores (as
    :func:`mistrust.core.audit.audit` runs them for the score-based attacks)."""
    rows: list[MetricRow] = []
    for attack in attacks:
        scored = {}
        for name in set_names:
            f = load_npz(paths.scores(BASE, attack, name))
            scored[name] = (f["score"], f["is_member"], f["predicted"])
        rows += check_rows(BASE, attack, scored, seed=seed, baseline=blind, iid_sets=iid_sets)
    return rows


def add_reference_rows(
    attack_rows: Sequence[MetricRow],
    r: ReferenceOptions,
    outs: ReferenceOutputs,
    set_names: Sequence[str],
    paths: RunPaths,
    *,
    aupr: str,
    seed: int,
    blind: Mapping[str, np.ndarray] | None,
    iid_sets: Collection[str],
) -> list[MetricRow]:
    """``attack_rows`` (the score-based attacks') with the reference attacks' rows and
    checks added and every verdict decided again: the reference attacks join the score
    attacks' Holm family."""
    rows = list(attack_rows) + reference_rows(r, outs, set_names, paths, aupr=aupr)
    checks = reference_checks(
        r.attacks, set_names, paths, seed=seed, blind=blind, iid_sets=iid_sets
    )
    return _ranked_again(add_verdicts(rows + checks), paths)


def _ranked_again(rows: list[MetricRow], paths: RunPaths) -> list[MetricRow]:
    """The base variant's strongest attack decided again with the reference attacks among
    the competitors (docs/CHECKS.md), from every attack's saved scores on ``original``."""
    ranking = {STRONGEST, RUNNER_UP, *GAP_KEYS}
    kept = [r for r in rows if not (r.variant == BASE and r.metric in ranking)]
    scores = {}
    for attack in dict.fromkeys(r.attack for r in kept if r.variant == BASE):
        path = paths.scores(BASE, attack, "original")
        if path.is_file():
            f = load_npz(path)
            scores[attack] = (f["score"], f["is_member"])
    return kept + strongest_rows(BASE, kept, scores, dataset="original")
