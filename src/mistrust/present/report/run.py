"""What the report reads from a run directory: :class:`Run`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mistrust.present.tables import read_attack_rows, read_model_rows
from mistrust.rows import MetricRow, ModelRow
from mistrust.runtime.paths import RunPaths


@dataclass
class Run:
    """The rows, config and ``results.json`` of one run directory."""

    paths: RunPaths
    rows: list[MetricRow]
    model_rows: list[ModelRow]
    config: dict = field(default_factory=dict)
    config_text: str = ""
    doc: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.paths, RunPaths):  # a plain directory
            self.paths = RunPaths(self.paths)

    @property
    def path(self) -> Path:
        return self.paths.root

    @classmethod
    def load(cls, run_dir: Path | RunPaths) -> Run:
        paths = run_dir if isinstance(run_dir, RunPaths) else RunPaths(run_dir)
        run = cls(paths, read_attack_rows(paths), read_model_rows(paths))
        if paths.results_json.is_file():
            run.doc = json.loads(paths.results_json.read_text())
        if paths.config.is_file():
            run.config_text = paths.config.read_text()
            run.config = yaml.safe_load(run.config_text) or {}
        elif isinstance(run.doc.get("config"), dict):
            run.config = run.doc["config"]
            run.config_text = yaml.safe_dump(run.config, sort_keys=False)
        return run

    def get(self, dotted: str, default: object = None) -> object:
        """A config value by its dotted key (``"data.dataset"``), or ``default``."""
        node: object = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node
