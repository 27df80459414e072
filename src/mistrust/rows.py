"""The typed rows of a run's results: one type per tidy file.

``results.csv`` holds :class:`MetricRow`s, ``model_metrics.csv`` :class:`ModelRow`s,
``results_seeds.csv`` :class:`SeedRow`s and ``model_metrics_seeds.csv``
:class:`ModelSeedRow`s; each file's columns are its type's field names, in order. The
tables (:mod:`mistrust.present.tables`) are built from these rows only. docs/ARCHITECTURE.md
says who writes and reads each file.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

__all__ = ["MetricRow", "ModelRow", "ModelSeedRow", "SeedRow", "Values", "find_value"]


class MetricRow(NamedTuple):
    """One value of the tidy result table (a row of ``results.csv``)."""

    variant: str  # e.g. "base", or the calibration the outputs went through
    attack: str
    dataset: str  # evaluation set, or "shadow" for the operating point
    # a key of mistrust.metrics.METRIC_KEYS, a check, or "operating_score": with dataset
    # "shadow", the attack's decision threshold fitted on the shadow model, in score units
    metric: str
    value: float


def find_value(rows: list[MetricRow], key: tuple[str, ...], variant: str | None) -> float:
    """The value of ``key`` = ``(attack, dataset, metric)`` in ``rows`` (of ``variant``, or
    the first variant that has it); ``(variant, attack, dataset, metric)`` is also taken,
    the older form of ``RunResult.value``. ``KeyError`` if there is none."""
    if len(key) == 4 and variant is None:
        variant, key = key[0], key[1:]
    if len(key) != 3:
        raise TypeError(f"value() takes attack, dataset, metric (and variant=), got {key!r}")
    for r in rows:
        if (r.attack, r.dataset, r.metric) == key and variant in (None, r.variant):
            return r.value
    raise KeyError((variant, *key))


class ModelRow(NamedTuple):
    """One quality value of one model (a row of ``model_metrics.csv``)."""

    variant: str
    role: str  # "target" or "shadow"
    dataset: str  # "train", "test", "members", "nonmembers" or an evaluation set
    metric: str  # e.g. "accuracy", "ece", "mmps", "emd_max_score"
    value: float


class SeedRow(NamedTuple):
    """One :class:`MetricRow` key across seeds (a row of ``results_seeds.csv``)."""

    variant: str
    attack: str
    dataset: str
    metric: str
    n: int  # seeds with a value (NaN values are left out)
    mean: float  # NaN for n = 0
    sd: float  # sample standard deviation (ddof 1); NaN for n < 2


class ModelSeedRow(NamedTuple):
    """One :class:`ModelRow` key across seeds (a row of ``model_metrics_seeds.csv``)."""

    variant: str
    role: str
    dataset: str
    metric: str
    n: int
    mean: float
    sd: float


class Values(dict):
    """Tidy values ``{(variant, attack or role, dataset, metric): value}`` that also answer,
    without a scan of every value, for one cell (:meth:`cell`), one metric across sets
    (:meth:`across_sets`) or across attacks (:meth:`attacks_with`): the verdicts and
    tables ask that for every attack and set."""

    _index: tuple[int, dict, dict, dict] | None = None

    def __setitem__(self, key: tuple[str, str, str, str], value: float) -> None:
        self._index = None  # a replaced value; added ones also change the length below
        super().__setitem__(key, value)

    def _indexed(self) -> tuple[dict, dict, dict]:
        if self._index is None or self._index[0] != len(self):
            cells: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
            metric: dict[tuple[str, str, str], list[tuple[str, float]]] = defaultdict(list)
            attacks: dict[tuple[str, str, str], list[str]] = defaultdict(list)
            for (v, a, d, m), x in self.items():
                cells[(v, a, d)][m] = x
                metric[(v, a, m)].append((d, x))
                attacks[(v, d, m)].append(a)
            self._index = (len(self), cells, metric, attacks)
        return self._index[1], self._index[2], self._index[3]

    def cell(self, variant: str, attack: str, dataset: str) -> dict[str, float]:
        """Every metric of one (variant, attack, set), in row order."""
        return dict(self._indexed()[0].get((variant, attack, dataset), {}))

    def across_sets(self, variant: str, attack: str, metric: str) -> list[tuple[str, float]]:
        """``(set, value)`` of one metric of one (variant, attack), in row order."""
        return list(self._indexed()[1].get((variant, attack, metric), []))

    def attacks_with(self, variant: str, dataset: str, metric: str) -> list[str]:
        """The attacks (or roles) of one variant with a value of ``metric`` on ``dataset``,
        in row order."""
        return list(self._indexed()[2].get((variant, dataset, metric), []))
