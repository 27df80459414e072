"""Every file of a run directory, named in one place.

The layout is the README's "Run directory" section; docs/ARCHITECTURE.md says who
writes what. Stages take a :class:`RunPaths` (or the one directory they own) and never
assemble a path of the run directory from strings, so the layout can change here
without hunting through the stages.

Names that come from users (attacks, evaluation sets, variants) become file or folder
names; :func:`file_name` refuses the ones that would leave their folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mistrust.errors import InputError

#: the reference attacks' own outputs: ``outputs/reference/<model>/`` and ``models/reference/``
REFERENCE = "reference"
#: the target model's outputs on the reference attacks' queries
REFERENCE_TARGET = "target"
#: a shadow trained by ``mistrust audit`` (``models/trained/shadow.pt``)
TRAINED = "trained"


def file_name(name: str) -> str:
    """``name`` unchanged if it can be one file or folder name inside its folder."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise InputError(f"{name!r} cannot be a file name; use letters, digits, '_', '-', '.'")
    return name


def set_file(folder: str | Path, dataset: str, *, suffix: str = "") -> Path:
    """``folder/<dataset><suffix>.npz``: the one file per set of a folder of outputs, scores
    or baseline scores (``suffix``: ``"-flip"`` for horizontally flipped queries)."""
    return Path(folder) / f"{file_name(dataset + suffix)}.npz"


def score_file(variant_scores: str | Path, attack: str, dataset: str) -> Path:
    """``<attack>/<dataset>.npz`` inside a variant's scores folder (:meth:`RunPaths.scores`)."""
    return set_file(Path(variant_scores) / file_name(attack), dataset)


@dataclass(frozen=True)
class RunPaths:
    """The paths of one run directory ``root`` (nothing is created or read here)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    def prepare(self) -> RunPaths:
        """Create the run directory and remove the half-written files (``.*.tmp``) of a
        killed run, so that a rerun resumes from whole files only; return ``self``."""
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.rglob(".*.tmp"):
            stale.unlink(missing_ok=True)
        return self

    # -- files at the top ---------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def splits(self) -> Path:
        return self.root / "splits.npz"

    @property
    def canaries(self) -> Path:
        """The canaries of the one-run audit: pool rows, wrong labels, in or out."""
        return self.root / "canaries.npz"

    @property
    def results_csv(self) -> Path:
        return self.root / "results.csv"

    @property
    def model_metrics_csv(self) -> Path:
        return self.root / "model_metrics.csv"

    @property
    def results_json(self) -> Path:
        return self.root / "results.json"

    @property
    def tables_md(self) -> Path:
        return self.root / "tables.md"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def inputs_key(self) -> Path:
        """SHA-256 of an audit's inputs; outputs computed from other inputs are stale."""
        return self.root / "inputs.sha256"

    @property
    def vulnerable_csv(self) -> Path:
        return self.root / "vulnerable.csv"

    @property
    def agreement_csv(self) -> Path:
        return self.root / "agreement.csv"

    @property
    def compare_csv(self) -> Path:
        return self.root / "compare.csv"

    @property
    def compare_md(self) -> Path:
        return self.root / "compare.md"

    @property
    def diff_csv(self) -> Path:
        """``mistrust diff``: every value compared with another run's."""
        return self.root / "diff.csv"

    @property
    def diff_md(self) -> Path:
        return self.root / "diff.md"

    @property
    def reference_keep(self) -> Path:
        """The reference population and which reference model trained on which sample."""
        return self.root / "reference_keep.npz"

    # -- repeats over seeds ------------------------------------------------------------
    @property
    def results_seeds_csv(self) -> Path:
        return self.root / "results_seeds.csv"

    @property
    def model_metrics_seeds_csv(self) -> Path:
        return self.root / "model_metrics_seeds.csv"

    @property
    def tables_seeds_md(self) -> Path:
        return self.root / "tables_seeds.md"

    def seed_run(self, seed: int) -> RunPaths:
        """The sub-run of one seed of ``--seeds K``."""
        return RunPaths(self.root / f"seed-{int(seed)}")

    # -- models and outputs ------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model(self, variant: str, role: str) -> Path:
        """Weights and metadata of one model: ``models/<variant>/<role>.pt``."""
        return self.models_dir / file_name(variant) / f"{file_name(role)}.pt"

    def privacy(self, variant: str, role: str) -> Path:
        """What the accountant says a DP-SGD model spent (docs/DP.md)."""
        return self.models_dir / file_name(variant) / f"{file_name(role)}.dp.json"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    def role_outputs(self, variant: str, role: str) -> Path:
        """The folder of one model's outputs: ``outputs/<variant>/<role>/``."""
        return self.outputs_dir / file_name(variant) / file_name(role)

    def outputs(self, variant: str, role: str, dataset: str) -> Path:
        """One model's outputs on one set: ``outputs/<variant>/<role>/<dataset>.npz``
        (``dataset``: also ``train`` / ``test``, the role's whole splits)."""
        return set_file(self.role_outputs(variant, role), dataset)

    def parts(self, role: str) -> Path:
        """``outputs/base/<role>/parts.json`` of ``mistrust audit``: how many rows of
        ``test.npz`` are non-members (the rest are calibration images)."""
        return self.role_outputs("base", role) / "parts.json"

    @property
    def trained_shadow(self) -> Path:
        """A shadow that ``mistrust audit`` trained from a factory (with its fingerprint)."""
        return self.models_dir / TRAINED / "shadow.pt"

    def reference_model(self, index: int) -> Path:
        return self.models_dir / REFERENCE / f"{int(index)}.pt"

    def reference_outputs(self, model: int | str) -> Path:
        """Outputs of reference model ``model`` (or of ``"target"``) on the queries."""
        return self.outputs_dir / REFERENCE / file_name(str(model))

    def reference_output(self, model: int | str, dataset: str, *, flip: bool = False) -> Path:
        """``outputs/reference/<model>/<dataset>[-flip].npz``: ``population``, ``z``,
        ``audited`` or an OOD set, queried as is or horizontally flipped."""
        return set_file(self.reference_outputs(model), dataset, suffix="-flip" if flip else "")

    @property
    def reference_fingerprint(self) -> Path:
        """The fingerprint of the target whose extra reference outputs are cached."""
        return self.reference_outputs(REFERENCE_TARGET) / "fingerprint.txt"

    # -- scores, baseline, figures, tables -----------------------------------------------
    @property
    def scores_dir(self) -> Path:
        return self.root / "scores"

    def variant_scores(self, variant: str) -> Path:
        """``scores/<variant>/``: one folder per attack."""
        return self.scores_dir / file_name(variant)

    def scores(self, variant: str, attack: str, dataset: str) -> Path:
        """``scores/<variant>/<attack>/<dataset>.npz``."""
        return score_file(self.variant_scores(variant), attack, dataset)

    @property
    def baseline_dir(self) -> Path:
        return self.root / "baseline"

    def baseline(self, dataset: str) -> Path:
        return set_file(self.baseline_dir, dataset)

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    def figure(self, name: str) -> Path:
        """``figures/<name>.png``."""
        return self.figures_dir / f"{file_name(name)}.png"

    def gallery(self, dataset: str) -> Path:
        return self.figure(f"gallery_{file_name(dataset)}")

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    def table(self, key: str, suffix: str) -> Path:
        """``tables/<key>.<suffix>`` (``csv`` or ``tex``)."""
        return self.tables_dir / f"{file_name(key)}.{suffix}"
