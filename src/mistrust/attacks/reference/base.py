"""The base of the reference-model attacks (LiRA, RMIA, ...), each family online and offline.

Shaped like the score-based attacks (:mod:`mistrust.attacks.base`): ``fit`` learns
from models whose membership is known, ``score`` is float64 ``(N,)`` with HIGHER
meaning MORE LIKELY MEMBER, and ``decide`` applies the learned operating point
``operating_score_`` (``member iff score >= operating_score_``). The inputs differ:
instead of one shadow model's logits, a reference attack sees a *signal* of every
one of ``M`` reference models on every example, and a mask of which reference
models trained on which example (IN) and which did not (OUT):

* LiRA (:mod:`mistrust.attacks.reference.lira`): the logit-scaled confidence
  ``LiRA.signal``, ``(N, M)`` or ``(N, M, Q)`` with ``Q`` queries per example;
* RMIA (:mod:`mistrust.attacks.reference.rmia`): the probability of the label
  ``RMIA.signal``, ``(N, M)``, plus the target's and the reference models'
  probabilities on the population samples ``z``.

Each family lives in one module of this package, which defines its class and registers
it (:mod:`mistrust.attacks.reference.registry`); the stage (:mod:`mistrust.study.reference`)
asks the attack object for its signal and what it needs, never its family's name.

``fit(ref_signal, in_mask, z=...)`` takes the reference models' signals on their
population ``(P, M[, Q])`` with its IN mask ``(P, M)`` and learns the operating
point by leave-one-out: each reference model ``k`` in turn plays the target,
scored with the statistics of the other ``M - 1`` on the population rows that
are neither ``z`` nor IN (or OUT) for every model; the threshold maximising
TPR - FPR on those pooled scores (:func:`mistrust.metrics.rates.oracle_threshold`,
the rule of the paper's threshold attack) is ``operating_score_``.

``fit`` also estimates, once, every statistic that an attack pools over many
examples, on the whole reference population (``pooled_``): LiRA's pooled variances,
its online IN - OUT ``shift`` and its offline fallback mean (:func:`mistrust.attacks.reference.lira.pool`);
RMIA's reference signals on the ``z`` rows and its offline fallback prior. :meth:`score`
uses them for every set, so an example's score depends on that example alone: the
target's members score the same whichever evaluation set they are paired with, and the
FPR on a set is measured with the same attack as the TPR. In the leave-one-out, each
reference model is scored with the statistics of the other models' population.

At scale: :meth:`score` takes the rows in blocks of about
:data:`mistrust.attacks.reference.blocks.BLOCK_VALUES` reference values (a row's score being its own,
the blocks give the bits of one pass), so its temporaries stay a few MiB whatever ``N``;
RMIA's ``z`` ratios are computed once per target. LiRA's leave-one-out computes each
example's moments once per left-out model, in blocks (:func:`mistrust.attacks.reference.lira.leave_one_out`),
with the bits of the generic one; it costs ``O(M^2 P Q)`` all the same
(``benchmarks/bench_reference_scale.py``).

Example::

    attack = LiRA(online=False).fit(ref_phi_population, in_mask_population, z=z_rows)
    score = attack.score(target_phi, ref_phi, in_mask)  # (N,), higher = member
    member = attack.decide(score)
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from mistrust.attacks.base import NotFittedError
from mistrust.attacks.reference.blocks import row_blocks
from mistrust.metrics.rates import oracle_threshold

__all__ = ["MODES", "ReferenceAttack", "attack_name", "offline_counterpart", "split_name"]

#: the two ways every family runs, by name suffix: with the IN and OUT models of each
#: example (online) or with its OUT models alone (offline)
MODES: dict[str, bool] = {"online": True, "offline": False}


class ReferenceAttack(ABC):
    """Base of the reference-model attacks (module docstring).

    What a family provides:

    * ``family``: its name; its attacks are ``<family>-online`` and ``<family>-offline``
      (:func:`attack_name`), registered together by
      :func:`mistrust.attacks.reference.registry.register_family`;
    * :meth:`signal`: the per-example signal of one model's outputs, which the stage reads
      from every reference model and from the target;
    * ``queries``: whether it takes several queries per example (the image and its
      horizontal flip): then its signals are ``(N, M, Q)`` and ``(N, Q)``, else those of
      the unflipped query alone, ``(N, M)`` and ``(N,)``;
    * ``needs_z``: whether it compares with the population samples ``z``: then ``fit``
      needs ``z`` and ``score`` the target's signal on them (``target_z``);
    * :meth:`_pool`: the statistics estimated once on the reference population, and
      :meth:`_score`: the scores of a block of rows with them;
    * its constructor's keywords: the options of the reference section it reads, each
      under its key's name (``fixed_variance``, ``rmia_a``), which :meth:`from_options`
      hands it.
    """

    family: ClassVar[str] = ""
    #: whether the attack takes every query per example (LiRA) or the unflipped one (RMIA)
    queries: ClassVar[bool] = False
    #: whether the attack compares with population samples ``z`` (RMIA)
    needs_z: ClassVar[bool] = False
    operating_score_: float

    def __init__(self, *, online: bool) -> None:
        self.online = online

    @classmethod
    def from_options(cls, *, online: bool, **options: Any) -> ReferenceAttack:
        """The attack built from the options of the reference section (``fixed_variance``,
        ``rmia_a``, ...): by default those its constructor accepts, by name."""
        params = inspect.signature(cls.__init__).parameters
        return cls(online=online, **{k: v for k, v in options.items() if k in params})

    @property
    def name(self) -> str:
        """``"<family>-online"`` or ``"<family>-offline"``."""
        return attack_name(self.family, online=self.online)

    @staticmethod
    @abstractmethod
    def signal(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The per-example signal ``(N,)`` of one model's logits ``(N, C)`` and labels ``(N,)``."""

    # ---- public API -------------------------------------------------------
    def fit(
        self, ref_signal: np.ndarray, in_mask: np.ndarray, *, z: np.ndarray | None = None
    ) -> ReferenceAttack:
        """Learn the operating point from the reference models' population.

        Args:
            ref_signal: ``(P, M)`` or ``(P, M, Q)`` signal of each population row under
                each reference model.
            in_mask: ``(P, M)`` bool, True where reference model ``m`` trained on row ``p``.
            z: ``(Z,)`` population rows that serve as RMIA's population samples (needed
                by RMIA); they are never used to learn the operating point.

        Returns:
            ``self``, with ``operating_score_``, ``n_models_``, the population statistics
            ``pooled_`` (module docstring) and the ``z`` rows' signals ``ref_z_``, ``in_z_``.
        """
        ref = np.asarray(ref_signal)
        in_mask = _check_mask(in_mask, ref)
        n_models = in_mask.shape[1]
        if n_models < 2:
            raise ValueError(f"fit needs at least 2 reference models, got {n_models}")
        z = np.empty(0, np.int64) if z is None else np.asarray(z, dtype=np.int64)
        if self.needs_z and len(z) == 0:
            raise ValueError(f"{self.name} needs the population samples z (fit z=)")
        n_in = in_mask.sum(axis=1)
        rows = np.setdiff1d(np.flatnonzero((n_in > 0) & (n_in < n_models)), z)
        pooled = self._pool(ref, in_mask, z)  # first: it checks the values
        scores = [self._leave_one_out(ref, in_mask, rows, z, k) for k in range(n_models)]
        members = [in_mask[rows, k] for k in range(n_models)]
        self.operating_score_ = oracle_threshold(np.concatenate(scores), np.concatenate(members))
        self.n_models_ = n_models
        self.ref_z_, self.in_z_ = ref[z], in_mask[z]
        self.pooled_ = pooled
        return self

    def score(
        self,
        target_signal: np.ndarray,
        ref_signal: np.ndarray,
        in_mask: np.ndarray,
        *,
        target_z: np.ndarray | None = None,
    ) -> np.ndarray:
        """Membership score ``(N,)`` float64; higher means more likely member.

        Args:
            target_signal: ``(N,)`` or ``(N, Q)`` the target's signal on the queries.
            ref_signal: ``(N, M)`` or ``(N, M, Q)`` the same ``M`` reference models as in
                ``fit`` on the same queries.
            in_mask: ``(N, M)`` bool, True where reference model ``m`` trained on example
                ``n`` (offline attacks use only the OUT models, ``~in_mask``).
            target_z: ``(Z,)`` the target's signal on the ``z`` rows given to ``fit`` (RMIA).
        """
        self._check_fitted()
        ref = np.asarray(ref_signal)
        in_mask = _check_mask(in_mask, ref)
        if in_mask.shape[1] != self.n_models_:
            raise ValueError(
                f"fitted on {self.n_models_} reference models, scored with {in_mask.shape[1]}"
            )
        if self.needs_z and target_z is None:
            raise ValueError(f"{self.name} needs the target's signal on z (target_z=)")
        t = np.asarray(target_signal)
        if t.ndim == 0 or len(t) != len(ref):
            raise ValueError(
                f"target_signal must have one row per row of ref_signal ({len(ref)}), "
                f"got shape {t.shape}"
            )
        pooled, t_z = self._for_target(self.pooled_, target_z)
        # a row's score is its own (the pooled statistics come from fit), so row blocks give
        # the bits of one pass while their temporaries stay a few MiB
        blocks = row_blocks(len(t), int(np.prod(ref.shape[1:])))
        if len(blocks) <= 1:
            return self._score(t, ref, in_mask, pooled, t_z)
        out = np.empty(len(t))
        for i, j in blocks:
            out[i:j] = self._score(t[i:j], ref[i:j], in_mask[i:j], pooled, t_z)
        return out

    def decide(self, score: np.ndarray) -> np.ndarray:
        """Decisions ``(N,)`` bool: ``score >= operating_score_``."""
        self._check_fitted()
        return np.asarray(score) >= self.operating_score_

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({args})"

    # ---- for subclasses ---------------------------------------------------
    def _leave_one_out(
        self, ref: np.ndarray, in_mask: np.ndarray, rows: np.ndarray, z: np.ndarray, k: int
    ) -> np.ndarray:
        """Scores of the population ``rows`` with reference model ``k`` as the target and the
        statistics of the other models' population, as :meth:`score` uses all of them."""
        others = np.delete(np.arange(in_mask.shape[1]), k)
        keep = in_mask[:, others]
        pooled = self._pool(ref[:, others], keep, z)
        for_k = self._for_target(pooled, ref[z, k])  # LiRA ignores the z rows
        return self._score(ref[rows, k], ref[rows][:, others], keep[rows], *for_k)

    def _for_target(self, pooled: Any, t_z: Any) -> tuple[Any, Any]:
        """What :meth:`_score` gets as ``pooled`` and ``t_z`` for a target: by default the
        population statistics and the target's ``z`` signal; a subclass computes here, once
        per target, what every row block shares."""
        return pooled, t_z

    @abstractmethod
    def _pool(self, ref: np.ndarray, in_mask: np.ndarray, z: np.ndarray) -> Any:
        """The statistics estimated once on the population ``ref (P, M[, Q])`` with IN mask
        ``(P, M)`` and population samples ``z (Z,)``, for :meth:`_score`."""

    @abstractmethod
    def _score(
        self, t_x: np.ndarray, ref_x: np.ndarray, in_x: np.ndarray, pooled: Any, t_z: Any
    ) -> np.ndarray:
        """Scores of queries ``t_x`` against ``ref_x`` with IN mask ``in_x``, with the
        population statistics ``pooled`` of :meth:`_pool` and the target's ``z`` signal
        ``t_z`` (RMIA)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "operating_score_"):
            raise NotFittedError(
                f"this {type(self).__name__} ({self.name!r}) is not fitted yet: call "
                "fit(ref_signal, in_mask, z=...) on the reference population first"
            )


def _check_mask(in_mask: Any, ref: np.ndarray) -> np.ndarray:
    m = np.asarray(in_mask)
    if m.dtype != bool or m.ndim != 2 or m.shape != ref.shape[:2]:
        raise ValueError(
            f"in_mask must be boolean of shape {ref.shape[:2]} (N, M), got {m.dtype} {m.shape}"
        )
    return m


def attack_name(family: str, *, online: bool) -> str:
    """``"<family>-online"`` or ``"<family>-offline"``: the names of a family's attacks."""
    return f"{family}-{'online' if online else 'offline'}"


def split_name(name: str) -> tuple[str, bool]:
    """``(family, online)`` of an attack name made by :func:`attack_name`.

    Raises:
        ValueError: ``name`` does not end in ``-online`` or ``-offline``.
    """
    family, sep, mode = name.rpartition("-")
    if not (sep and family and mode in MODES):
        raise ValueError(
            f"reference attack name {name!r} must be <family>-online or <family>-offline"
        )
    return family, MODES[mode]


def offline_counterpart(name: str) -> str:
    """``lira-online`` -> ``lira-offline`` (an offline name is returned unchanged)."""
    family, _ = split_name(name)
    return attack_name(family, online=False)
