"""Audit the model of train.py from Python: the same run directory as ``mistrust audit``.

Usage (after ``python train.py --out out``)::

    python audit_by_python.py --out runs/own-python

Runs the audit twice: the ``.pt2`` program of ``audit.yaml``, then the same model as
factory + state dict, and the saved logits alone (``logits.yaml``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import mistrust

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/own-python"))
    ap.add_argument("--config-dir", type=Path, default=HERE, help="folder of the YAML files")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    cfg = args.config_dir

    program = mistrust.run_audit(cfg / "audit.yaml", args.out / "program", overrides=args.set)
    # the same model rebuilt by its factory from the state dict
    as_state = [
        "target.model=null",
        "target.factory=digits_net:make_net",
        f"target.weights={(cfg / 'out' / 'target_state.pt').resolve()}",
    ]
    state = mistrust.run_audit(
        cfg / "audit.yaml", args.out / "state-dict", overrides=[*args.set, *as_state]
    )
    logits = mistrust.run_audit(cfg / "logits.yaml", args.out / "logits")

    print(f"{'audit':<12} {'TPR':>6} {'FPR original':>13} {'FPR scaled':>11}")
    for name, result in (("program", program), ("state-dict", state), ("logits", logits)):
        tpr = result.value("threshold", "original", "tpr", variant="base")
        fpr = result.value("threshold", "original", "fpr", variant="base")
        scaled = result.value("threshold", "scaled", "fpr", variant="base")
        print(f"{name:<12} {tpr:>6.3f} {fpr:>13.3f} {scaled:>11.3f}")


if __name__ == "__main__":
    main()
