"""The run-directory layout of RunPaths is the README's, and user names cannot escape it."""

import re
from pathlib import Path

import pytest

from mistrust.errors import InputError
from mistrust.runtime.paths import RunPaths, file_name, score_file, set_file

README = Path(__file__).resolve().parents[2] / "README.md"


def test_layout_matches_the_readme():
    p = RunPaths("RUN")
    block = README.read_text().split("## Run directory", 1)[1].split("```")[1]
    assert "models/<variant>/{target,shadow}.pt" in block
    assert p.model("base", "target") == Path("RUN/models/base/target.pt")
    assert "outputs/<variant>/<role>/<dataset>.npz" in block
    assert p.outputs("laplace", "shadow", "noise") == Path("RUN/outputs/laplace/shadow/noise.npz")
    assert "scores/<variant>/<attack>/<dataset>.npz" in block
    assert p.scores("base", "salem", "gan") == Path("RUN/scores/base/salem/gan.npz")
    assert "baseline/<dataset>.npz" in block
    assert p.baseline("scaled") == Path("RUN/baseline/scaled.npz")
    for name in re.findall(r"^  ([a-z_.]+\.(?:csv|json|yaml|npz|md|html|txt))", block, re.M):
        attr = {
            "config.yaml": "config",
            "splits.npz": "splits",
            "results.csv": "results_csv",
            "model_metrics.csv": "model_metrics_csv",
            "results.json": "results_json",
            "vulnerable.csv": "vulnerable_csv",
            "tables.md": "tables_md",
        }[name]
        assert getattr(p, attr) == Path("RUN") / name


def test_other_files():
    p = RunPaths(Path("/tmp/x"))
    assert p.report_html.name == "report.html" and p.report_md.name == "report.md"
    assert p.log.name == "log.txt" and p.agreement_csv.name == "agreement.csv"
    assert p.gallery("gan") == Path("/tmp/x/figures/gallery_gan.png")
    assert p.table("fpr_base", "tex") == Path("/tmp/x/tables/fpr_base.tex")
    assert p.reference_model(3) == Path("/tmp/x/models/reference/3.pt")
    assert p.reference_outputs("target") == Path("/tmp/x/outputs/reference/target")
    assert p.seed_run(7).results_csv == Path("/tmp/x/seed-7/results.csv")
    assert p.role_outputs("base", "target") == p.outputs("base", "target", "x").parent


@pytest.mark.parametrize("bad", ["", "..", ".hidden", "a/b", "a\\b", "x\0y"])
def test_names_that_would_leave_their_folder_are_refused(bad):
    with pytest.raises(InputError, match="cannot be a file name"):
        file_name(bad)
    with pytest.raises(InputError):
        RunPaths("RUN").scores("base", bad, "original")


def test_plain_names_pass_unchanged():
    assert file_name("modified-entropy") == "modified-entropy"
    assert file_name("tpr_at_0.1fpr") == "tpr_at_0.1fpr"


def test_files_of_audits_and_reference_attacks():
    p = RunPaths("RUN")
    assert p.outputs("base", "shadow", "train") == Path("RUN/outputs/base/shadow/train.npz")
    assert p.parts("target") == Path("RUN/outputs/base/target/parts.json")
    assert p.trained_shadow == Path("RUN/models/trained/shadow.pt")
    assert p.inputs_key == Path("RUN/inputs.sha256")
    assert p.reference_keep == Path("RUN/reference_keep.npz")
    assert p.reference_output(2, "population") == Path("RUN/outputs/reference/2/population.npz")
    assert p.reference_output(0, "noise", flip=True) == Path(
        "RUN/outputs/reference/0/noise-flip.npz"
    )
    assert p.reference_output("target", "z") == Path("RUN/outputs/reference/target/z.npz")
    assert p.reference_output("target", "audited", flip=True).name == "audited-flip.npz"
    assert p.reference_fingerprint == Path("RUN/outputs/reference/target/fingerprint.txt")
    assert p.figure("vulnerable") == Path("RUN/figures/vulnerable.png")


def test_folder_helpers_name_the_same_files():
    p = RunPaths("RUN")
    assert score_file("RUN/scores/base", "loss", "gan") == p.scores("base", "loss", "gan")
    assert set_file("RUN/baseline", "scaled") == p.baseline("scaled")
    assert set_file("x", "noise", suffix="-flip") == Path("x/noise-flip.npz")
    with pytest.raises(InputError):
        p.reference_output(0, "../z")
    with pytest.raises(InputError):
        score_file("RUN/scores/base", "a/b", "gan")


def test_paths_are_values():
    # a job carries RunPaths to executor tasks: equal by root, and picklable
    import pickle

    assert RunPaths("RUN") == RunPaths(Path("RUN"))
    assert pickle.loads(pickle.dumps(RunPaths("RUN"))) == RunPaths("RUN")
