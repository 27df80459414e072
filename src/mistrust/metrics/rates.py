"""ROC-derived rates of a membership score (pure functions, NumPy in, floats out).

Every function takes ``score (N,)`` (higher = more likely member) and
``is_member (N,)`` bool with at least one member and one non-member.

ROC convention (scikit-learn's ``roc_curve`` with ``drop_intermediate=False``):
point ``i`` predicts "member" for ``score >= thresholds[i]``; ``thresholds[0]``
is ``inf`` (nothing predicted), the last point predicts everything. Tied
scores are never split, so no interpolation is done anywhere: every reported
rate is achieved by an actual threshold.
"""

from __future__ import annotations

import numpy as np

from mistrust.errors import InputError

__all__ = [
    "AUPR_METHODS",
    "MIN_FALSE_POSITIVES",
    "Ranked",
    "aupr",
    "aupr_trapezoid",
    "auroc",
    "check_scores",
    "fpr_at_tpr",
    "oracle_threshold",
    "ranked_for",
    "roc_curve",
    "roc_point",
    "tpr_at_fpr",
]

_TOL = 1e-12  # rates compared with a target allow this slack for float rounding (e.g. 0.1 * 30)
#: TPR at FPR ``x`` is resolved when ``x`` allows at least this many false positives
#: (``n_nonmembers * x >= MIN_FALSE_POSITIVES``): with fewer, the threshold is set by
#: one or two non-members and the rate moves in jumps of ``1 / n_nonmembers``.
MIN_FALSE_POSITIVES = 5


def _check_rate(name: str, x: float) -> None:
    if x != x:  # NaN fails every comparison: say so rather than "must lie in [0, 1]"
        raise ValueError(f"{name} is NaN; give a number in [0, 1]")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {x}")


def check_scores(score: np.ndarray, is_member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``score`` as float64 ``(N,)`` and ``is_member`` as bool ``(N,)``."""
    s = np.asarray(score)
    m = np.asarray(is_member)
    if s.ndim != 1 or m.ndim != 1:
        raise InputError(f"score and is_member must be 1-D, got shapes {s.shape} and {m.shape}")
    if len(s) != len(m):
        raise InputError(f"score has {len(s)} entries but is_member has {len(m)}")
    s = s.astype(np.float64, copy=False)
    if not np.isfinite(s).all():
        raise InputError("score contains NaN or Inf")
    if m.dtype != bool:
        if not (np.issubdtype(m.dtype, np.number) and np.isin(m, (0, 1)).all()):
            raise InputError("is_member must be boolean (or 0/1)")
        m = m.astype(bool)
    n_in = int(m.sum())
    if n_in == 0 or n_in == len(m):
        raise InputError(
            f"need both members and non-members, got {n_in} members and {len(m) - n_in} non-members"
        )
    return s, m


class Ranked:
    """One sort of a labelled score array, shared by every rate and check computed from it.

    At a million scores a sort costs tenths of a second; an audit needs the ROC counts,
    DeLong's placements, the ties and both groups sorted for every attack and set, so
    they are all derived here from one ``argsort``. Built from ``(score, is_member)``
    (validated by :func:`check_scores`), or with a known ascending ``order`` of the scores
    (:meth:`order_of` gives a subset's).
    """

    def __init__(
        self, score: np.ndarray, is_member: np.ndarray, *, order: np.ndarray | None = None
    ) -> None:
        self.score, self.is_member = check_scores(score, is_member)
        self.order = np.argsort(self.score) if order is None else order
        s, m = self.score[self.order], self.is_member[self.order]
        self.n_members = int(m.sum())
        self.n_nonmembers = len(m) - self.n_members
        # tie blocks of the ascending order: first index of each, and its members
        head = np.empty(len(s), dtype=bool)  # True where a tie block begins
        head[0] = True
        np.not_equal(s[1:], s[:-1], out=head[1:])
        start = np.flatnonzero(head)
        size = np.diff(start, append=len(s))
        members = np.add.reduceat(m.astype(np.int64), start)
        self._sorted, self._sorted_member, self._head = s, m, head
        self._start, self._size, self._members = start, size, members
        self._counts: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._roc: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._placements: tuple[np.ndarray, np.ndarray] | None = None

    def order_of(self, keep: np.ndarray) -> np.ndarray:
        """An ascending ``argsort`` of ``score[keep]`` (``keep (N,)`` bool), without sorting."""
        keep = np.asarray(keep, dtype=bool)
        index = np.cumsum(keep) - 1  # position of each kept score in the subset
        return index[self.order[keep[self.order]]]

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """False/true positive counts and thresholds at each distinct score, descending
        (computed once, read-only)."""
        if self._counts is None:  # computed once (read-only): most rates start from them
            tps = np.cumsum(self._members[::-1])
            fps = np.cumsum(self._size[::-1]) - tps
            self._counts = fps, tps, self._sorted[self._start[::-1]]
            for a in self._counts:
                a.flags.writeable = False
        return self._counts

    def largest_tie(self) -> int:
        """The number of samples in the largest group of equal scores."""
        return int(self._size.max())

    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """``(member scores, non-member scores)``, each ascending."""
        return self._sorted[self._sorted_member], self._sorted[~self._sorted_member]

    def placements(self) -> tuple[np.ndarray, np.ndarray]:
        """DeLong's placement values: ``v10 (n_members,)``, ``v01 (n_nonmembers,)``, each in
        the order of ``score[is_member]`` / ``score[~is_member]``.

        ``v10[i]`` = share of non-members that member ``i`` outscores (ties count 1/2),
        ``v01[j]`` = 1 - share of members that non-member ``j`` outscores (ties 1/2).
        Computed once (read-only): the AUROC's interval and p-value both read them.
        """
        if self._placements is None:
            self._placements = self._place()
            for a in self._placements:
                a.flags.writeable = False
        return self._placements

    def _place(self) -> tuple[np.ndarray, np.ndarray]:
        non = self._size - self._members
        non_below = np.cumsum(non) - non
        mem_below = np.cumsum(self._members) - self._members
        v10 = (non_below + 0.5 * non) / self.n_nonmembers
        v01 = 1.0 - (mem_below + 0.5 * self._members) / self.n_members
        # each score's tie block, in the input order: one integer scatter, then each group
        # reads only its own table (not both tables for every score, then a choice)
        block = np.empty(len(self.score), dtype=np.intp)
        block[self.order] = np.cumsum(self._head) - 1
        return v10[block[self.is_member]], v01[block[~self.is_member]]

    def roc_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`roc_curve` of these scores (computed once, read-only)."""
        if self._roc is None:
            fps, tps, thr = self.counts()
            fpr, tpr = np.zeros(len(fps) + 1), np.zeros(len(tps) + 1)  # the (0, 0) point
            np.divide(fps, fps[-1], out=fpr[1:])  # divided in place: no prepended copies
            np.divide(tps, tps[-1], out=tpr[1:])
            self._roc = fpr, tpr, np.r_[np.inf, thr]
            for a in self._roc:
                a.flags.writeable = False
        return self._roc

    def auroc(self) -> float:
        """:func:`auroc` of these scores."""
        fpr, tpr, _ = self.roc_curve()
        return float(np.trapezoid(tpr, fpr))

    def aupr(self) -> float:
        """:func:`aupr` of these scores."""
        fps, tps, _ = self.counts()
        precision = tps / (tps + fps)
        recall = tps / tps[-1]
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))

    def aupr_trapezoid(self) -> float:
        """:func:`aupr_trapezoid` of these scores."""
        fps, tps, _ = self.counts()
        stop = int(np.searchsorted(tps, tps[-1])) + 1  # first threshold with full recall
        precision = np.r_[1.0, tps[:stop] / (tps[:stop] + fps[:stop])]
        recall = np.r_[0.0, tps[:stop] / tps[-1]]
        return float(np.trapezoid(precision, recall))

    def fpr_at_tpr(self, tpr: float = 0.95) -> float:
        """:func:`fpr_at_tpr` of these scores."""
        _check_rate("tpr", tpr)
        fprs, tprs, _ = self.roc_curve()
        return float(fprs[np.argmax(tprs >= tpr - _TOL)])

    def tpr_at_fpr(self, fpr: float = 0.001) -> float:
        """:func:`tpr_at_fpr` of these scores."""
        _check_rate("fpr", fpr)
        fprs, tprs, _ = self.roc_curve()
        return float(tprs[fprs <= fpr + _TOL].max())

    def resolved_tpr_at_fpr(self, fpr: float) -> float:
        """:meth:`tpr_at_fpr`, or NaN where the non-members cannot resolve ``fpr`` (it
        allows fewer than :data:`MIN_FALSE_POSITIVES` false positives): what
        ``results.csv`` reports, so that a rate set by one or two non-members is never
        read as measured."""
        _check_rate("fpr", fpr)
        if fpr < MIN_FALSE_POSITIVES / self.n_nonmembers:
            return float("nan")
        return self.tpr_at_fpr(fpr)

    def oracle_threshold(self) -> float:
        """:func:`oracle_threshold` of these scores."""
        fpr, tpr, thr = self.roc_curve()
        return float(thr[np.argmax(tpr - fpr)])


def ranked_for(score: np.ndarray, is_member: np.ndarray, ranked: Ranked | None) -> Ranked:
    """``ranked`` if given (it must hold ``score``: one sort shared by several metrics and
    checks), else ``Ranked(score, is_member)``."""
    if ranked is None:
        return Ranked(score, is_member)
    if np.shape(score) != ranked.score.shape:
        raise ValueError(
            f"ranked holds {len(ranked.score)} scores, score has shape {np.shape(score)}"
        )
    return ranked


def roc_curve(
    score: np.ndarray, is_member: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve: ``(fpr, tpr, thresholds)``, each ``(K + 1,)`` for ``K`` distinct scores.

    Equals ``sklearn.metrics.roc_curve(is_member, score, drop_intermediate=False)``.
    """
    return tuple(a.copy() for a in Ranked(score, is_member).roc_curve())  # type: ignore[return-value]


def roc_point(score: np.ndarray, is_member: np.ndarray, threshold: float) -> tuple[float, float]:
    """``(tpr, fpr)`` of the rule "member iff ``score >= threshold``"."""
    s, m = check_scores(score, is_member)
    pred = s >= threshold
    return float(pred[m].mean()), float(pred[~m].mean())


def auroc(score: np.ndarray, is_member: np.ndarray) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``); ties count one half."""
    return Ranked(score, is_member).auroc()


def aupr(score: np.ndarray, is_member: np.ndarray) -> float:
    """Average precision, members positive (``sklearn.metrics.average_precision_score``).

    ``sum_i (R_i - R_{i-1}) P_i`` over the distinct thresholds (step-wise, no
    trapezoid, so it is not optimistic).
    """
    return Ranked(score, is_member).aupr()


def aupr_trapezoid(score: np.ndarray, is_member: np.ndarray) -> float:
    """Trapezoid area under the precision-recall curve, members positive.

    The curve is scikit-learn's ``precision_recall_curve``: one point per
    distinct threshold down to the first that reaches full recall, plus
    ``(recall 0, precision 1)``; linear interpolation between neighbouring
    thresholds (``sklearn.metrics.auc(recall, precision)``). This is the
    paper's AUPR (torchmetrics' ``auc`` of its ``precision_recall_curve``);
    linear interpolation of precision is optimistic, which is why the
    default is :func:`aupr`. The paper's code re-sorted the points by recall
    with an unstable sort, so where several thresholds share one recall the
    order it joined them in was unspecified; here they keep threshold order.
    """
    return Ranked(score, is_member).aupr_trapezoid()


#: ``attacks.aupr`` choices: name -> function
AUPR_METHODS = {"average-precision": aupr, "trapezoid": aupr_trapezoid}
#: the same choices as methods of :class:`Ranked`
AUPR_OF_RANKED = {"average-precision": Ranked.aupr, "trapezoid": Ranked.aupr_trapezoid}


def fpr_at_tpr(score: np.ndarray, is_member: np.ndarray, tpr: float = 0.95) -> float:
    """Smallest FPR of a threshold whose TPR is at least ``tpr`` (the paper's FPR@95%TPR)."""
    return Ranked(score, is_member).fpr_at_tpr(tpr)


def tpr_at_fpr(score: np.ndarray, is_member: np.ndarray, fpr: float = 0.001) -> float:
    """Largest TPR of a threshold whose FPR is at most ``fpr`` (no interpolation).

    The ``(0, 0)`` point always qualifies, so the result is 0 when even the
    top-scored tie block contains too many non-members.
    """
    return Ranked(score, is_member).tpr_at_fpr(fpr)


def oracle_threshold(score: np.ndarray, is_member: np.ndarray) -> float:
    """Threshold (rule ``score >= t``) maximising TPR - FPR on the given data; first maximum.

    On the shadow data this is the calibration rule of the threshold attacks; on
    the target data it is the best-in-hindsight ("oracle") operating point, an
    upper bound no real attacker can pick. TPR - FPR (balanced accuracy) rather
    than accuracy, so an unbalanced evaluation set does not move it; on balanced
    sets the two coincide. May be ``inf`` (predict nothing) for a useless score.
    """
    s, m = check_scores(score, is_member)
    # Only values are needed, so two value sorts replace an argsort (~2.5x faster). The
    # first maximum of TPR - FPR on the descending ROC is never at a threshold whose tie
    # block has no member: the point before it has the same TPR and a smaller FPR, and the
    # two differences are >= 1 / n_nonmembers apart, far above rounding. So only the
    # distinct member scores (and inf) are candidates, with the same counts, divisions
    # and first maximum as :meth:`Ranked.oracle_threshold`: the same float.
    members, others = np.sort(s[m]), np.sort(s[~m])
    start = np.flatnonzero(np.r_[True, members[1:] != members[:-1]])[::-1]
    values = members[start]  # distinct member scores, descending
    tps = np.r_[0, len(members) - start]
    fps = np.r_[0, len(others) - np.searchsorted(others, values, side="left")]
    best = int(np.argmax(tps / len(members) - fps / len(others)))
    return float(np.inf) if best == 0 else float(values[best - 1])
