"""The per-sample view of one variant, read from its saved scores (``scores/<variant>``).

Which members the strongest attack is surest about (``vulnerable.csv``), and how far
the attacks agree on what they flag (``agreement.csv``). Nothing here runs a model:
the scores, decisions and max scores come from ``scores/<variant>/<attack>/<set>.npz``,
AUROC and thresholds from the tidy result rows. The arithmetic is
:mod:`mistrust.metrics.persample`.

"Strongest" is the audit's choice, its ``strongest`` row on the in-distribution set
(``original``; the first evaluation set if the run has none; docs/CHECKS.md): the attack
with the highest AUROC there among those with a shadow-fixed threshold and no degenerate
flag (the reference attacks too where the run has them), ties to the attack listed first.
Rows written before the audit made that choice get the same one here
(:func:`mistrust.metrics.persample.attack_ranking`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mistrust.checks.ranking import STRONGEST
from mistrust.errors import InputError
from mistrust.io import atomic_write_text, load_npz
from mistrust.metrics.persample import attack_ranking, jaccard_matrix, most_vulnerable
from mistrust.present.results import tidy_csv
from mistrust.rows import MetricRow
from mistrust.runtime.paths import RunPaths, score_file

log = logging.getLogger(__name__)

__all__ = [
    "AGREEMENT_COLUMNS",
    "AGREEMENT_FILE",
    "MEMBERS",
    "PerSample",
    "VULNERABLE_FILE",
    "Vulnerable",
    "per_sample_view",
    "write_per_sample",
]

# file names of RunPaths.vulnerable_csv / agreement_csv, for readers given only a folder
VULNERABLE_FILE = RunPaths(".").vulnerable_csv.name
AGREEMENT_FILE = RunPaths(".").agreement_csv.name
#: the ``samples`` value of agreement rows about members (other rows name a set)
MEMBERS = "members"
AGREEMENT_COLUMNS = (
    "variant",
    "samples",
    "attack_a",
    "attack_b",
    "n_a",
    "n_b",
    "n_both",
    "jaccard",
)


@dataclass(frozen=True)
class Vulnerable:
    """One member of the ranking."""

    rank: int  # 1 = largest margin
    position: int  # row among the members (the scores' first rows)
    index: int  # the sample's index in the dataset's train pool (-1 if unknown)
    label: int  # its class (-1 if unknown)
    margin: float  # strongest attack's score minus its shadow-fixed threshold
    max_score: float  # the target's max softmax probability on it
    flagged_by: int  # how many attacks call it "member" at their operating point
    scores: dict[str, float]  # every attack's score on it


@dataclass
class PerSample:
    """The per-sample view of one variant."""

    variant: str
    attacks: list[str]  # attacks with saved scores, in result order
    reference_set: str  # the in-distribution set AUROC and member decisions are read from
    strongest: str | None  # None: no attack with a threshold and a defined AUROC
    vulnerable: list[Vulnerable] = field(default_factory=list)
    agreement: list[tuple] = field(default_factory=list)  # rows of AGREEMENT_COLUMNS


def _load(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    d = load_npz(path)
    return {
        "score": np.asarray(d["score"], dtype=np.float64),
        "is_member": np.asarray(d["is_member"], dtype=bool),
        "predicted": np.asarray(d["predicted"], dtype=bool),
        "max_score": np.asarray(d["max_score"], dtype=np.float64),
    }


def _load_scores(scores_dir: Path, attack: str, dataset: str) -> dict[str, np.ndarray] | None:
    try:
        path = score_file(scores_dir, attack, dataset)
    except InputError:  # a name that cannot be a file name was never saved as scores
        return None
    return _load(path)


def _ordered(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def per_sample_view(
    scores_dir: Path,
    rows: Sequence[MetricRow],
    *,
    variant: str,
    k: int,
    member_index: np.ndarray | None = None,
    member_label: np.ndarray | None = None,
) -> PerSample:
    """The per-sample view of ``variant`` from ``scores_dir`` (= ``RUN/scores/<variant>``).

    Args:
        scores_dir: holds ``<attack>/<set>.npz`` (score, is_member, predicted, max_score).
        rows: the result rows (``results.csv``); AUROC on the
            in-distribution set and ``("shadow", "operating_score")`` are read from them.
        variant: rows of other variants are ignored.
        k: how many members to rank.
        member_index, member_label: ``(M,)`` dataset index and class of each member row,
            in the scores' order; unknown (-1) if not given.

    Returns:
        A :class:`PerSample`; empty lists where the variant has no saved scores.
    """
    own = [r for r in rows if r.variant == variant]
    sets = _ordered([r.dataset for r in own if r.dataset != "shadow"])
    ref_set = "original" if "original" in sets else (sets[0] if sets else "original")
    loaded: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for attack in _ordered([r.attack for r in own]):
        per_set = {s: d for s in sets if (d := _load_scores(scores_dir, attack, s))}
        if ref_set in per_set:
            loaded[attack] = per_set
    if loaded:  # every attack must score the same members in the same rows
        first = next(iter(loaded))
        m = loaded[first][ref_set]["is_member"]
        for a in list(loaded):
            x = loaded[a][ref_set]["is_member"]
            if x.shape != m.shape or not np.array_equal(x, m):
                log.warning("%s: %s has other members than %s; left out", scores_dir, a, first)
                del loaded[a]
    view = PerSample(variant, list(loaded), ref_set, None)
    if not loaded:
        return view
    value = {(r.attack, r.dataset, r.metric): r.value for r in own}
    threshold = {a: value.get((a, "shadow", "operating_score")) for a in loaded}
    view.strongest = _strongest(own, value, list(loaded), ref_set)
    n = int(m.sum())
    member_index = _per_member(member_index, n, "member_index")
    member_label = _per_member(member_label, n, "member_label")
    flagged = {a: per_set[ref_set]["predicted"][m] for a, per_set in loaded.items()}
    if view.strongest is not None:
        best = loaded[view.strongest][ref_set]
        order, margin = most_vulnerable(best["score"][m], threshold[view.strongest], k=k)
        count = np.sum(list(flagged.values()), axis=0)
        scores = {a: per_set[ref_set]["score"][m] for a, per_set in loaded.items()}
        view.vulnerable = [
            Vulnerable(
                rank=i + 1,
                position=int(p),
                index=int(member_index[p]),
                label=int(member_label[p]),
                margin=float(margin[i]),
                max_score=float(best["max_score"][m][p]),
                flagged_by=int(count[p]),
                scores={a: float(s[p]) for a, s in scores.items()},
            )
            for i, p in enumerate(order)
        ]
    view.agreement = _agreement(variant, MEMBERS, flagged)
    for s in sets:  # false positives: the set's non-members an attack calls "member"
        fp = {a: d[s]["predicted"][~d[s]["is_member"]] for a, d in loaded.items() if s in d}
        if fp:
            view.agreement += _agreement(variant, s, fp)
    return view


def _strongest(
    own: Sequence[MetricRow], value: dict, loaded: list[str], ref_set: str
) -> str | None:
    """The audit's ``strongest`` attack on ``ref_set``; for rows written without one, the
    same choice among the attacks with saved scores."""
    marked = [r.attack for r in own if r.metric == STRONGEST and r.dataset == ref_set]
    if marked:
        return marked[0] if marked[0] in loaded else None
    order = attack_ranking(value, loaded, ref_set)
    return order[0] if order else None


def _per_member(values: np.ndarray | None, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(n, -1, dtype=np.int64)
    values = np.asarray(values, dtype=np.int64)
    if values.shape != (n,):
        raise ValueError(f"{name} has shape {values.shape}, expected ({n},) (one per member)")
    return values


def _agreement(variant: str, samples: str, flags: dict[str, np.ndarray]) -> list[tuple]:
    names = list(flags)
    jac = jaccard_matrix([flags[a] for a in names])
    count = {a: int(np.count_nonzero(flags[a])) for a in names}
    return [
        (
            variant,
            samples,
            a,
            b,
            count[a],
            count[b],
            int(np.count_nonzero(flags[a] & flags[b])),
            float(jac[i, j]),
        )
        for i, a in enumerate(names)
        for j, b in enumerate(names)
    ]


def vulnerable_rows(views: Sequence[PerSample]) -> tuple[tuple[str, ...], list[tuple]]:
    """``(columns, rows)`` of ``vulnerable.csv``: one row per ranked member, one score
    column per attack (every variant's attacks; empty where a variant has no such attack)."""
    attacks = _ordered([a for v in views for a in v.attacks])
    columns = (
        "variant",
        "rank",
        "index",
        "class",
        "ranked_by",
        "margin",
        "max_score",
        "flagged_by",
        "n_attacks",
        *attacks,
    )
    rows = [
        (
            v.variant,
            x.rank,
            x.index,
            x.label,
            v.strongest,
            x.margin,
            x.max_score,
            x.flagged_by,
            len(v.attacks),
            *(x.scores.get(a, "") for a in attacks),
        )
        for v in views
        for x in v.vulnerable
    ]
    return columns, rows


def write_per_sample(paths: RunPaths, views: Sequence[PerSample]) -> list[Path]:
    """Write ``vulnerable.csv`` and ``agreement.csv`` into the run directory ``paths``;
    return their paths."""
    columns, rows = vulnerable_rows(views)
    written = [paths.vulnerable_csv, paths.agreement_csv]
    atomic_write_text(written[0], tidy_csv(columns, rows))
    atomic_write_text(
        written[1], tidy_csv(AGREEMENT_COLUMNS, [r for v in views for r in v.agreement])
    )
    return written
