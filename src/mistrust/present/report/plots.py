"""The report's figures, drawn from a run directory's stored scores and outputs.

Every function returns a :class:`matplotlib.figure.Figure` (no pyplot state) or
``None`` when its inputs are missing; :func:`png_bytes` turns one into a
deterministic PNG (no timestamp or software metadata), :func:`data_uri` embeds it, and
:func:`draw_pngs` draws many at once.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from mistrust.errors import InputError
from mistrust.io import load_npz
from mistrust.metrics import emd, roc_curve
from mistrust.metrics.reliability import reliability_bins
from mistrust.present.tables.findings import TradeoffPoint
from mistrust.runtime.paths import RunPaths

DPI = 90
STYLE = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "mistrust",
    "path.simplify": True,
}
COLORS = [f"C{i}" for i in range(10)]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]


def style() -> AbstractContextManager:
    return matplotlib.rc_context(STYLE)


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (byte-identical for identical input)."""
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _draw_png(draw: Callable[[], Figure | None]) -> bytes | None:
    fig = draw()
    return None if fig is None else png_bytes(fig)


def draw_pngs(draws: Sequence[Callable[[], Figure | None]]) -> list[bytes | None]:
    """``png_bytes(draw())`` of every figure (None where ``draw`` returns None), in order.

    matplotlib draws on one core, and a report's figures are independent, so they are
    drawn in forked processes, one per usable core (:func:`mistrust.runtime.executors.run_calls`).
    The bytes are the same either way.
    """
    from mistrust.runtime.executors import run_calls

    return run_calls([partial(_draw_png, d) for d in draws])


def label(text: str, limit: int = 28) -> str:
    """A user string made safe for matplotlib text (no mathtext), shortened."""
    text = str(text)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def _run(run_dir: Path | RunPaths) -> RunPaths:
    return run_dir if isinstance(run_dir, RunPaths) else RunPaths(run_dir)


def load_scores(run_dir: Path | RunPaths, variant: str, attack: str, dataset: str) -> dict | None:
    """``score``, ``is_member``, ``predicted``, ``max_score`` of one set, or ``None``."""
    paths = _run(run_dir)
    try:
        path = paths.scores(variant, attack, dataset)
    except InputError:  # a name that cannot be a file name has no scores
        return None
    if not _inside(paths.scores_dir, path) or not path.is_file():
        return None
    d = load_npz(path)
    return {k: d[k] for k in ("score", "is_member", "predicted", "max_score") if k in d}


def operating_point(d: dict) -> tuple[float, float]:
    """``(fpr, tpr)`` of the stored shadow-calibrated decisions, exact."""
    pred, m = d["predicted"].astype(bool), d["is_member"].astype(bool)
    return float(pred[~m].mean()), float(pred[m].mean())


@dataclass(frozen=True)
class Margins:
    """Inches around and between the axes of a grid figure, fixed per figure: a layout
    engine (constrained layout) draws a figure twice to measure its labels; the default
    run's 14 figures took 7.9-9.0 s with it and 5.3-6.0 s without (BENCHMARKS.md)."""

    left: float = 0.62  # y tick labels and the y label
    right: float = 0.15
    top: float = 0.62  # the figure title above the axes titles
    bottom: float = 0.5  # x tick labels and the x label
    wgap: float = 0.62  # between columns: the y labels of the panel on the right
    hgap: float = 0.8  # between rows: x labels above, an axes title below


def _grid(
    n: int, ncols: int, box: tuple[float, float], margins: Margins = Margins()
) -> tuple[Figure, list]:
    """A figure of ``n`` axes of ``box`` inches each, ``ncols`` to a row, in ``margins``."""
    ncols = max(1, min(n, ncols))
    nrows = math.ceil(n / ncols)
    m = margins
    width = m.left + ncols * box[0] + (ncols - 1) * m.wgap + m.right
    height = m.top + nrows * box[1] + (nrows - 1) * m.hgap + m.bottom
    fig = Figure(figsize=(width, height))
    axes = []
    for i in range(n):
        row, col = divmod(i, ncols)
        x0 = m.left + col * (box[0] + m.wgap)
        y0 = height - m.top - (row + 1) * box[1] - row * m.hgap
        axes.append(fig.add_axes((x0 / width, y0 / height, box[0] / width, box[1] / height)))
    return fig, axes


def _title(fig: Figure, text: str) -> None:
    fig.suptitle(text, y=1 - 0.08 / fig.get_figheight(), va="top")


def _legend_top_right(fig: Figure, handles: list, labels: list) -> None:
    """A one-row figure legend in the title band, at the right."""
    fig.legend(handles, labels, loc="upper right", bbox_to_anchor=(1, 1), ncols=len(labels))


def _roc_axes(ax, log: bool, n_neg: int, n_pos: int) -> None:
    if log:
        ax.set_xscale("log", nonpositive="mask")
        ax.set_yscale("log", nonpositive="mask")
        lo_x, lo_y = 0.5 / max(n_neg, 1), 0.5 / max(n_pos, 1)
        ax.set_xlim(lo_x, 1.05)
        ax.set_ylim(lo_y, 1.05)
        # decades only: minor log ticks were most of a log-log panel's drawing time
        ax.xaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_locator(NullLocator())
        grid = np.logspace(math.log10(min(lo_x, lo_y)), 0, 50)
        ax.plot(grid, grid, ls=":", c="0.5", lw=1)
    else:
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.plot([0, 1], [0, 1], ls=":", c="0.5", lw=1)
    ax.set_xlabel("false-positive rate" + (" (log)" if log else ""))
    ax.set_ylabel("true-positive rate" + (" (log)" if log else ""))


def _curve(ax, d: dict, color: str, name: str) -> None:
    fpr, tpr, _ = roc_curve(d["score"], d["is_member"])
    ax.plot(fpr, tpr, color=color, lw=1.4, label=name, drawstyle="steps-post")
    x, y = operating_point(d)
    ax.plot([x], [y], marker="o", ms=7, color=color, mec="black", mew=1, ls="none")


def roc_figure(
    run_dir: Path | RunPaths, variant: str, attack: str, sets: list[str]
) -> Figure | None:
    """Members vs each evaluation set: ROC and log-log ROC, operating points marked."""
    data = [(i, s, load_scores(run_dir, variant, attack, s)) for i, s in enumerate(sets)]
    data = [(i, s, d) for i, s, d in data if d is not None]
    if not data:
        return None
    with style():
        # the legend below: one row per four entries
        rows = math.ceil((len(data) + 1) / 4)
        fig, (lin, log) = _grid(2, 2, (2.8, 2.3), Margins(bottom=0.62 + 0.2 * rows))
        for i, s, d in data:
            for ax in (lin, log):
                _curve(ax, d, COLORS[i % 10], label(s))
        n_pos = int(data[0][2]["is_member"].sum())
        n_neg = max(int((~d["is_member"].astype(bool)).sum()) for _, _, d in data)
        _roc_axes(lin, False, n_neg, n_pos)
        _roc_axes(log, True, n_neg, n_pos)
        handles, labels = lin.get_legend_handles_labels()
        handles.append(Line2D([], [], marker="o", ls="none", mfc="white", mec="black"))
        labels.append("shadow-calibrated threshold")
        fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0), ncols=4)
        _title(fig, f"{label(attack)} attack, variant {label(variant)}: members vs each set")
    return fig


def variant_roc_figure(
    run_dir: Path | RunPaths, variants: list[str], attacks: list[str], dataset: str = "original"
) -> Figure | None:
    """Log-log ROC on in-distribution data, one panel per attack, one curve per variant."""
    panels = [
        (a, [(j, v, load_scores(run_dir, v, a, dataset)) for j, v in enumerate(variants)])
        for a in attacks
    ]
    panels = [(a, [x for x in ds if x[2] is not None]) for a, ds in panels]
    panels = [(a, ds) for a, ds in panels if ds]
    if not panels:
        return None
    with style():
        fig, axes = _grid(len(panels), 3, (2.9, 2.4), Margins(top=0.72))
        for ax, (a, ds) in zip(axes, panels, strict=True):
            for j, v, d in ds:
                _curve(ax, d, COLORS[j % 10], label(v))
            m = ds[0][2]["is_member"].astype(bool)
            _roc_axes(ax, True, int((~m).sum()), int(m.sum()))
            ax.set_title(label(a))
        axes[0].legend(loc="lower right", framealpha=0.9)
        _title(
            fig,
            f"Members vs {label(dataset)} non-members per variant (log-log ROC; "
            "dots: shadow-calibrated threshold)",
        )
    return fig


def histogram_figure(
    run_dir: Path | RunPaths, variant: str, attack: str, sets: list[str], emds: dict[str, float]
) -> Figure | None:
    """Max-score histograms, members vs each set, annotated with the EMD."""
    data = [(i, s, load_scores(run_dir, variant, attack, s)) for i, s in enumerate(sets)]
    data = [(i, s, d) for i, s, d in data if d is not None and "max_score" in d]
    if not data:
        return None
    bins = np.linspace(0.0, 1.0, 26)
    with style():
        ncols = math.ceil(len(data) / math.ceil(len(data) / 8))
        fig, axes = _grid(len(data), ncols, (1.75, 1.3), Margins(wgap=0.3))
        for j, (ax, (i, s, d)) in enumerate(zip(axes, data, strict=True)):
            if j % ncols:  # one shared 0..1 scale: labelled on the first panel of a row
                ax.tick_params(labelleft=False)
            m = d["is_member"].astype(bool)
            members, others = d["max_score"][m], d["max_score"][~m]
            for x, kw in (
                (members, {"histtype": "step", "color": "black", "lw": 1.3, "label": "members"}),
                (
                    others,
                    {
                        "histtype": "stepfilled",
                        "color": COLORS[i % 10],
                        "alpha": 0.55,
                        "label": "evaluation set",
                    },
                ),
            ):
                ax.hist(x, bins=bins, weights=np.full(len(x), 1.0 / max(len(x), 1)), **kw)
            dist = emds.get(s, emd(members, others))
            ax.text(
                0.04,
                0.95,
                f"EMD {dist:.3f}",
                transform=ax.transAxes,
                va="top",
                fontsize=8,
                bbox={"fc": "white", "ec": "0.8", "pad": 2},
            )
            ax.set_title(label(s, 22))
            ax.set_xlabel("max softmax score")
            ax.set_ylim(0, 1)
        axes[0].set_ylabel("share of samples")
        _legend_top_right(fig, *axes[0].get_legend_handles_labels())
        _title(fig, f"Max-score distributions, variant {label(variant)}")
    return fig


def reliability_figure(run_dir: Path | RunPaths, variants: list[str]) -> Figure | None:
    """Reliability diagrams (15 equal-width bins) of each variant's target test outputs."""
    data = []
    for v in variants:
        paths = _run(run_dir)
        try:
            path = paths.outputs(v, "target", "test")
        except InputError:
            continue
        if _inside(paths.outputs_dir, path) and path.is_file():
            out = load_npz(path)
            keep = out["labels"] >= 0
            if keep.any():
                data.append(
                    (v, reliability_bins(out["logits"][keep], out["labels"][keep], n_bins=15))
                )
    if not data:
        return None
    with style():
        fig, axes = _grid(len(data), 5, (2.2, 2.0), Margins(wgap=0.3))
        for j, (ax, (v, b)) in enumerate(zip(axes, data, strict=True)):
            if j % 5:  # one shared 0..1 scale: labelled on the first panel of a row
                ax.tick_params(labelleft=False)
            width = np.diff(b["edges"])
            used = b["count"] > 0
            ax.bar(
                b["edges"][:-1][used],
                b["accuracy"][used],
                width=width[used],
                align="edge",
                color="C0",
                ec="white",
                label="accuracy",
            )
            centers = (b["edges"][:-1] + width / 2)[used]
            ax.plot(
                centers,
                b["confidence"][used],
                ls="none",
                marker="_",
                ms=9,
                mew=2.2,
                color="C3",
                label="mean confidence",
            )
            ax.plot([0, 1], [0, 1], ls=":", c="0.3", lw=1)
            w = b["count"] / b["count"].sum()
            e = float(np.sum(w * np.abs(b["accuracy"] - b["confidence"])))
            ax.set_title(f"{label(v)} (ECE {e:.3f})")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("confidence")
        axes[0].set_ylabel("accuracy")
        _legend_top_right(fig, *axes[0].get_legend_handles_labels())
        _title(fig, "Reliability of the target models (test split)")
    return fig


def tradeoff_figure(points: Sequence[TradeoffPoint]) -> Figure | None:
    """Over-confidence vs leakage: one point per (variant, attack)."""
    if not points:
        return None
    variants = list(dict.fromkeys(p.variant for p in points))
    attacks = list(dict.fromkeys(p.attack for p in points))
    with style():
        fig, axes = _grid(2, 2, (4.2, 3.0), Margins(wgap=0.75, right=1.9))
        for ax, key, ylab in (
            (axes[0], "auroc", "in-distribution AUROC"),
            (axes[1], "tpr_at_1fpr", "in-distribution TPR at 1% FPR"),
        ):
            for p in points:
                v, a, x, y = p.variant, p.attack, p.ood_fpr, getattr(p, key)
                if math.isnan(x) or math.isnan(y):
                    continue
                ax.plot(
                    [x],
                    [y],
                    ls="none",
                    marker=MARKERS[variants.index(v) % 10],
                    ms=8,
                    color=COLORS[attacks.index(a) % 10],
                    mec="black",
                    mew=0.5,
                )
                if len(points) <= 12:  # beyond that the legend's markers say it more clearly
                    ax.annotate(
                        label(v, 14),
                        (x, y),
                        xytext=(4, 3),
                        textcoords="offset points",
                        fontsize=7,
                        color="0.25",
                    )
            for a in attacks:  # arrows: how each variant moves an attack from the first one
                own = {p.variant: (p.ood_fpr, getattr(p, key)) for p in points if p.attack == a}
                start = own.get(variants[0])
                for v, end in own.items():
                    if v != variants[0] and start and not any(map(math.isnan, (*start, *end))):
                        ax.annotate(
                            "",
                            end,
                            start,
                            arrowprops={
                                "arrowstyle": "->",
                                "color": COLORS[attacks.index(a) % 10],
                                "alpha": 0.45,
                                "lw": 1,
                                "shrinkA": 5,
                                "shrinkB": 5,
                            },
                        )
            ax.set_xlim(-0.03, 1.03)
            ax.set_xlabel("OOD false-positive rate (mean over non-original sets)")
            ax.set_ylabel(ylab)
        axes[0].axhline(0.5, ls=":", c="0.5", lw=1)
        handles = [
            Line2D([], [], ls="none", marker="o", color=COLORS[i % 10], label=label(a))
            for i, a in enumerate(attacks)
        ]
        handles += [
            Line2D([], [], ls="none", marker=MARKERS[i % 10], color="0.4", label=label(v))
            for i, v in enumerate(variants)
        ]
        fig.legend(
            handles=handles,
            loc="center right",
            bbox_to_anchor=(1, 0.5),
            title="attack / variant",
        )
        _title(fig, "Over-confidence vs leakage (arrows: from the first variant to each other)")
    return fig
