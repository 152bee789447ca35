"""Config changes rerun exactly what they change: every setting reaches its rules as params.

After a finished tiny run, each change is dry-run in a copy of the run; the planned jobs must be
the jobs that depend on the setting, and no others.
"""

import re
import shutil

import pytest
import yaml
from test_workflow import planned_jobs, snakemake

pytestmark = pytest.mark.workflow

#: Every rule of the tiny run below the ingest of the patients (no fusion in the tiny config).
BELOW_INGEST = {
    "ingest",
    "ingest_wide",
    "fold_listing",
    "qc_summary",
    "train",
    "predict",
    "train_detector",
    "carry_detector",
    "predict_auto",
    "evaluate",
    "evaluate_selection",
    "clinical",
    "localiser_figure",
    "readers",
    "manifest",
    "roc_figure",
    "ensembles_figure",
    "confusion_figure",
    "training_figure",
    "gradcam_figure",
    "report_html",
    "all",
}
#: What depends on the classifiers' training settings (not the detectors: detect/epochs is set).
BELOW_TRAIN = {
    "train",
    "predict",
    "predict_auto",
    "evaluate",
    "evaluate_selection",
    "clinical",
    "localiser_figure",
    "readers",
    "manifest",
    "roc_figure",
    "ensembles_figure",
    "confusion_figure",
    "training_figure",
    "gradcam_figure",
    "report_html",
    "all",
}
#: What depends on the ensembles table.
BELOW_EVALUATE = {
    "evaluate",
    "evaluate_selection",
    "clinical",
    "readers",
    "manifest",
    "roc_figure",
    "ensembles_figure",
    "confusion_figure",
    "report_html",
    "all",
}

CHANGES = {
    "harmonize.size": (("harmonize", "size"), 40, BELOW_INGEST),
    "detect.fov_mm": (
        ("detect", "fov_mm"),
        250,
        {
            "ingest_wide",
            "fold_listing",
            "train_detector",
            "carry_detector",
            "predict_auto",
            "evaluate_selection",
            "localiser_figure",
            "gradcam_figure",
            "manifest",
            "report_html",
            "all",
        },
    ),
    "sequences.use": (("sequences", "use"), ["T2axi", "DWI", "T2sag"], BELOW_INGEST),
    "train.epochs": (("train", "epochs"), 3, BELOW_TRAIN),
    "evaluate.bootstrap": (("evaluate", "bootstrap"), 150, BELOW_EVALUATE),
    "evaluate.recalibrate": (
        ("evaluate", "recalibrate"),
        "isotonic",
        {"clinical", "report_html", "all"},
    ),
    "train.mem_mb (a resource)": (("train", "mem_mb"), 3000, set()),
    "nothing (keys reordered)": (("folds", "k"), 2, set()),
}


@pytest.fixture(scope="module")
def copied(tiny_run, tmp_path_factory):
    work = tmp_path_factory.mktemp("reruns") / "run"
    shutil.copytree(tiny_run, work, symlinks=True)  # keeps mtimes and .snakemake metadata
    proc = snakemake(work, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    return work


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_config_change_plans_exactly_its_dependent_jobs(copied, change):
    (section, key), value, expected = CHANGES[change]
    original = (copied / "config.yaml").read_text()
    config = yaml.safe_load(original)
    config[section][key] = value
    try:  # safe_dump sorts the keys: reordering alone must rerun nothing
        (copied / "config.yaml").write_text(yaml.safe_dump(config))
        proc = snakemake(copied, "-n")
    finally:
        (copied / "config.yaml").write_text(original)
    jobs = planned_jobs(proc.stdout)
    assert {rule for rule, _ in jobs} == expected, proc.stdout[-3000:]
    patients = 9
    if "ingest" in expected:
        assert sum(rule == "ingest" for rule, _ in jobs) == patients
    if change == "sequences.use":
        trained = {w for rule, w in jobs if rule == "train"}
        assert {
            f"sequence={s}, fold={f}" for s in ("T2axi", "DWI", "T2sag") for f in (0, 1)
        } == trained
    if change == "train.epochs":
        assert len([rule for rule, _ in jobs if rule == "train"]) == 4
    assert re.search(r"params", proc.stdout) or not expected  # the reason Snakemake gives
