"""Our numbers beside the paper's: ``compare_run(RUN)`` writes ``compare.csv`` / ``compare.md``.

The paper's published result tables ship in ``mistrust/paper_results`` (see the
README there for their source and licence). A file such as
``resnet18_cifar10_LS_0.0083_attack_results.csv`` belongs to one paper preset
(``paper-cifar10-resnet18``) and one variant (``label-smoothing``); its rows are
evaluation sets and its columns ``<Attack> Attack <Metric>``. Every value both
tables hold becomes one row: ours, the paper's, ours minus the paper's and, where
``results.csv`` holds an exact 95 % interval for the metric (TPR, FPR), whether
the paper's value lies inside it.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from mistrust.errors import ConfigError
from mistrust.io import atomic_write_text
from mistrust.present.tables.diff import INTERVALS as RESULT_INTERVALS
from mistrust.rows import MetricRow, ModelRow
from mistrust.runtime.paths import RunPaths

__all__ = ["COMPARE_COLUMNS", "Comparison", "compare_rows", "compare_run", "paper_tables"]

#: the paper's file-name prefix -> our preset, and (dataset, arch) to recognise a run by
PRESETS: dict[str, tuple[str, str, str]] = {
    "efficient_net_cifar10": ("paper-cifar10-efficientnet", "cifar10", "efficientnet-b0-cifar"),
    "resnet18_cifar10": ("paper-cifar10-resnet18", "cifar10", "resnet18-cifar"),
    "salem_cnn_relu_cifar10": ("paper-cifar10-salemcnn", "cifar10", "salem-cnn"),
    "resnet50_stanford_dogs": ("paper-stanford-dogs-resnet50", "stanford-dogs", "resnet50"),
}
#: the paper's file-name variant part -> (our variant, our config key of its setting)
VARIANTS: dict[str, tuple[str, str | None]] = {
    "": ("base", None),
    "LS": ("label-smoothing", "label_smoothing"),
    "L2": ("weight-decay", "weight_decay"),
    "temp": ("temperature", "temperature"),
    "LLLA": ("laplace", None),
}
ATTACKS = {"Threshold": "threshold", "Salem": "salem", "Entropy": "entropy"}
METRICS = {
    "Precision": "precision",
    "Recall": "tpr",
    "AUROC": "auroc",
    "AUPR": "aupr",
    "FPR@95%TPR": "fpr_at_95tpr",
    "FPR": "fpr",
    "TP_MMPS": "mmps_tp",
    "FP_MMPS": "mmps_fp",
    "FN_MMPS": "mmps_fn",
    "TN_MMPS": "mmps_tn",
}
#: the paper's row labels -> our evaluation-set names (first one present in the run wins)
SETS: dict[str, tuple[str, ...]] = {
    "Original": ("original",),
    "Permuted": ("permuted",),
    "Scaled": ("scaled",),
    "No Normalization": ("unnormalized",),
    "STL-10": ("stl10",),
    "CIFAR100": ("cifar100",),
    "SVHN": ("svhn",),
    "Stanford Dogs": ("stanford-dogs",),
    "Fake CIFAR-10": ("gan",),
    "Fake Dogs": ("gan",),
    "AFHQ Dogs": ("afhq-dog",),
    "AFHQ-Dogs": ("afhq-dog",),
    "AFHQ Cats": ("afhq-cat",),
    "AFHQ-Cats": ("afhq-cat",),
    "AFHQ-Wilds": ("afhq-wild",),
    "AFHQ-NonDogs": ("afhq-nondog", "afhq-non-dog", "afhq-nondogs"),
}
#: rows of ``*_performance_results.csv``, in order -> (role, dataset, metric) of model_metrics
PERFORMANCE = (
    ("target", "train", "accuracy"),
    ("target", "test", "accuracy"),
    ("target", "test", "ece"),
    ("shadow", "train", "accuracy"),
    ("shadow", "test", "accuracy"),
    ("shadow", "test", "ece"),  # labelled "ECE Target" in the paper's file: a typo there
)
#: our metric -> its exact 95 % interval in results.csv (the rows mistrust diff reads too)
INTERVALS = {m: RESULT_INTERVALS[m][:2] for m in ("tpr", "fpr")}
COMPARE_COLUMNS = (
    "variant",
    "attack",
    "dataset",
    "metric",
    "ours",
    "paper",
    "difference",
    "ci_low",
    "ci_high",
    "paper_in_ci",
)
_FILE = re.compile(
    r"(?P<model>.+?)_(?:(?P<variant>LS|L2|temp|LLLA)_(?:(?P<setting>[0-9.]+)_)?(?:calib_)?)?"
    r"(?P<kind>attack|performance)_results\.csv"
)


@dataclass(frozen=True)
class PaperTable:
    """One published file: its preset, variant, the variant's setting and its values."""

    preset: str
    variant: str
    setting_key: str | None
    setting: float | None
    values: dict[tuple[str, str, str], float]  # (attack, set label, our metric) -> value


@dataclass(frozen=True)
class Comparison:
    variant: str
    attack: str
    dataset: str
    metric: str
    ours: float
    paper: float
    ci_low: float | None
    ci_high: float | None

    @property
    def difference(self) -> float:
        return self.ours - self.paper

    @property
    def paper_in_ci(self) -> bool | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low <= self.paper <= self.ci_high


def _parse(name: str, text: str) -> PaperTable | None:
    m = _FILE.fullmatch(name)
    if m is None or m["model"] not in PRESETS:
        return None
    variant, key = VARIANTS[m["variant"] or ""]
    values: dict[tuple[str, str, str], float] = {}
    rows = list(csv.reader(io.StringIO(text)))
    if m["kind"] == "performance":
        for (role, dataset, metric), row in zip(PERFORMANCE, rows[1:], strict=False):
            values[(f"{role} model", dataset, metric)] = float(row[1])
    else:
        header = rows[0]
        for row in rows[1:]:
            for column, cell in zip(header[1:], row[1:], strict=True):
                attack, _, metric = column.partition(" Attack ")
                if cell.strip() and attack in ATTACKS and metric in METRICS:
                    values[(ATTACKS[attack], row[0], METRICS[metric])] = float(cell)
    setting = float(m["setting"]) if m["setting"] else None
    return PaperTable(PRESETS[m["model"]][0], variant, key, setting, values)


def paper_tables(preset: str) -> list[PaperTable]:
    """Every published table of ``preset`` (attack and performance files alike)."""
    folder = resources.files("mistrust") / "paper_results"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".csv"):
            table = _parse(entry.name, entry.read_text())
            if table is not None and table.preset == preset:
                out.append(table)
    return out


def _preset_of(config: dict) -> str:
    name = config.get("name")
    by_name = {p for p, _, _ in PRESETS.values()}
    if name in by_name:
        return str(name)
    data, model = config.get("data") or {}, config.get("model") or {}
    for preset, dataset, arch in PRESETS.values():
        if (data.get("dataset"), model.get("arch")) == (dataset, arch):
            return preset
    raise ConfigError(
        f"run {name!r} ({data.get('dataset')}, {model.get('arch')}) is not a paper-preset run; "
        f"compare needs a run of one of {', '.join(sorted(by_name))}"
    )


def compare_rows(
    tables: list[PaperTable], attack_rows: list[MetricRow], model_rows: list[ModelRow]
) -> list[Comparison]:
    """One :class:`Comparison` per value both the paper's tables and our rows hold.

    ``attack_rows`` / ``model_rows``: the rows of ``results.csv`` / ``model_metrics.csv``. NaN values of ours are skipped. In the
    order of our rows; model metrics appear as attack ``"target model"`` / ``"shadow model"``.
    """
    ours: dict[tuple[str, str, str, str], float] = {}
    for r in attack_rows:
        ours[(r.variant, r.attack, r.dataset, r.metric)] = float(r.value)
    for m in model_rows:
        ours[(m.variant, f"{m.role} model", m.dataset, m.metric)] = float(m.value)
    present = {d for (_, _, d, _) in ours}
    out = []
    for table in tables:
        for (attack, label, metric), paper in table.values.items():
            if attack.endswith(" model"):
                dataset = label
            else:
                dataset = next((s for s in SETS.get(label, ()) if s in present), "")
            value = ours.get((table.variant, attack, dataset, metric))
            if value is None or math.isnan(value):
                continue
            low_key, high_key = INTERVALS.get(metric, (None, None))
            low = ours.get((table.variant, attack, dataset, low_key or ""))
            high = ours.get((table.variant, attack, dataset, high_key or ""))
            out.append(Comparison(table.variant, attack, dataset, metric, value, paper, low, high))
    order = {key: i for i, key in enumerate(ours)}  # as results.csv lists them
    return sorted(out, key=lambda c: order[(c.variant, c.attack, c.dataset, c.metric)])


def _csv(rows: list[Comparison]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COMPARE_COLUMNS)
    for c in rows:
        inside = "" if c.paper_in_ci is None else int(c.paper_in_ci)
        w.writerow(
            [c.variant, c.attack, c.dataset, c.metric, repr(c.ours), repr(c.paper)]
            + [repr(round(c.difference, 12))]
            + ["" if x is None else repr(x) for x in (c.ci_low, c.ci_high)]
            + [inside]
        )
    return buf.getvalue()


def _setting_notes(tables: list[PaperTable], config: dict, rows: list[Comparison]) -> list[str]:
    """The paper's variant settings (from its file names) that this run does not share."""
    notes = []
    ours = config.get("variants") or {}
    compared = {c.variant for c in rows}
    for t in tables:
        if t.variant not in compared or not t.setting_key or t.setting is None:
            continue
        if ours.get(t.setting_key) != t.setting:
            notes.append(
                f"- {t.variant}: the paper used {t.setting_key} = {t.setting:g}, this run "
                f"{ours.get(t.setting_key)}"
            )
    return sorted(set(notes))


def _markdown(preset: str, rows: list[Comparison], notes: list[str], config: dict) -> str:
    lines = [
        f"# {config.get('name', preset)} beside the paper ({preset})\n",
        "Ours, the paper's published value, and ours minus the paper's. "
        "`in CI`: whether the paper's value lies inside our exact 95 % (Clopper-Pearson) "
        "interval. Every metric is in `compare.csv`.\n",
    ]
    if (config.get("data") or {}).get("stand_in"):
        lines.append("**This run used stand-in data: its numbers mean nothing.**\n")
    if notes:
        lines += ["Settings that differ from the paper's:\n", *notes, ""]
    checked = [c for c in rows if c.paper_in_ci is not None]
    inside = sum(bool(c.paper_in_ci) for c in checked)
    lines.append(
        f"{len(rows)} values compared; the paper's TPR / FPR lies inside our interval "
        f"in {inside} of {len(checked)}.\n"
    )
    shown = ("tpr", "fpr", "auroc")
    for variant in dict.fromkeys(c.variant for c in rows):
        sub = [c for c in rows if c.variant == variant and c.metric in shown]
        if not sub:
            continue
        lines += [
            f"## {variant}\n",
            "| attack | set | metric | ours | paper | difference | in CI |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in sub:
            flag = {None: "", True: "yes", False: "no"}[c.paper_in_ci]
            lines.append(
                f"| {c.attack} | {c.dataset} | {c.metric} | {c.ours:.4f} | {c.paper:.4f} | "
                f"{c.difference:+.4f} | {flag} |"
            )
        lines.append("")
    return "\n".join(lines)


def compare_run(run_dir: Path, *, report: bool = True) -> list[Path]:
    """Write ``RUN/compare.csv`` and ``RUN/compare.md`` for a paper-preset run (and rebuild
    its report, which then shows them); the paths written.

    Raises:
        FileNotFoundError: no ``results.csv`` in ``run_dir``.
        ConfigError: the run is not one of the paper presets.
    """
    from mistrust.present.tables import read_attack_rows, read_model_rows

    paths = RunPaths(run_dir)
    run_dir = paths.root
    attack_rows = read_attack_rows(run_dir)
    config_path = paths.config
    config = yaml.safe_load(config_path.read_text()) if config_path.is_file() else {}
    preset = _preset_of(config or {})
    tables = paper_tables(preset)
    rows = compare_rows(tables, attack_rows, read_model_rows(run_dir))
    out_csv, out_md = paths.compare_csv, paths.compare_md
    atomic_write_text(out_csv, _csv(rows))
    notes = _setting_notes(tables, config, rows)
    atomic_write_text(out_md, _markdown(preset, rows, notes, config))
    written = [out_csv, out_md]
    if report and paths.report_html.is_file():  # add the comparison to the report
        from mistrust.present.report import build_report

        written.append(build_report(run_dir))
    return written
