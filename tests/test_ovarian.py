"""End to end: a tiny three-class task with clinical fusion through the whole real DAG."""

import numpy as np
import pandas as pd
import pytest
from conftest import finished_run

pytestmark = pytest.mark.workflow
CLASSES = ["benign", "borderline", "malignant"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared_jax_cache):
    return finished_run(tmp_path_factory, "ovarian-run", "tiny-ovarian.yaml")


def test_models_output_three_class_probabilities(run):
    pred = pd.read_parquet(run / "results/models/DWI/fold0/predictions.parquet")
    probs = pred[[f"p_{c}" for c in CLASSES]].to_numpy()
    assert len(pred) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert set(pred["label"]) <= set(CLASSES)


def test_per_class_macro_confusion_and_summaries(run):
    per_class = pd.read_csv(run / "results/metrics/classes.tsv", sep="\t")
    assert set(per_class["scores"]) == {"T2axi", "DWI", "T2axi+DWI"}
    assert set(per_class["class"]) == {*CLASSES, "macro"}
    counts = per_class[per_class["class"] != "macro"].groupby("scores")["n"].sum()
    assert (counts == 9).all()  # every patient scored once per set
    confusion = pd.read_csv(run / "results/metrics/confusion.tsv", sep="\t")
    assert (confusion.groupby("scores")["n"].sum() == 9).all()
    assert (confusion.groupby("scores").size() == 9).all()  # 3 x 3 cells, zeros included
    summaries = pd.read_csv(run / "results/metrics/summaries.tsv", sep="\t")
    nonbenign = summaries[summaries["summary"] == "nonbenign_vs_benign"]
    assert (nonbenign["n_positive"] == 6).all() and len(nonbenign) == 3
    ensembles = pd.read_csv(run / "results/metrics/ensembles.tsv", sep="\t")
    assert ensembles["macro_auc"].is_monotonic_decreasing  # evaluate/rank_by: macro_auc
    assert ensembles[["macro_ss_avg", "macro_auc"]].apply(lambda c: c.between(0, 1)).all().all()


def test_fusion_compares_image_clinical_and_both(run):
    fusion = pd.read_csv(run / "results/metrics/fusion.tsv", sep="\t")
    assert fusion["model"].tolist() == ["image", "clinical", "image+clinical"]
    assert (fusion["n"] == 9).all()
    assert fusion[["macro_auc", "auc"]].apply(lambda c: c.between(0, 1)).all().all()
    coef = pd.read_csv(run / "results/metrics/fusion_coefficients.tsv", sep="\t")
    assert set(coef["class"]) == set(CLASSES)
    assert coef["feature"].str.startswith("ca125").any()


def test_report_shows_the_three_class_sections(run):
    html = (run / "results/report/index.html").read_text()
    for section in (
        "Per class (one vs rest)",
        "Binary summaries",
        "Clinical data beside the images",
        "nonbenign_vs_benign",
        "Confusion matrices",
        "SIMULATED",
    ):
        assert section in html, section
    assert (run / "results/figures/confusion.png").stat().st_size > 5_000
    # the cases table carries the simulated covariates; results never carry a patient folder
    cases = pd.read_csv(run / "data/synthetic/cases.tsv", sep="\t")
    assert {"age", "ca125", "menopausal"} <= set(cases.columns)
    assert not any(d in html for d in cases["patient_dir"])


def test_leave_one_centre_out_drives_the_run_and_the_clinical_evaluation(run):
    """folds/scheme centre: one fold per hospital, recorded in the lock; every table external."""
    from test_workflow import check_clinical_tables

    folds = pd.read_csv(run / "results/splits/folds.tsv", sep="\t")
    assert (folds.groupby("fold")["center"].nunique() == 1).all()  # a fold is one hospital
    assert sorted(folds.groupby("center")["fold"].first()) == [0, 1, 2]
    lock = pd.read_csv(run / "config/folds.lock.tsv", sep="\t")
    assert set(lock["scheme"]) == {"centre"} and len(lock) == 9
    external = pd.read_csv(run / "results/metrics/external.tsv", sep="\t")
    best = external[external["model"].str.startswith("best ensemble")]
    assert set(best["validation"]) == {"external"}  # nothing internal in a centre-only run
    assert best.set_index("hospital")["n"].to_dict() == {
        "all": 9,
        "center_a": 3,
        "center_b": 3,
        "center_c": 3,
    }
    check_clinical_tables(run, n_patients=9, recalibration="isotonic")
    cal = pd.read_csv(run / "results/metrics/calibration.tsv", sep="\t")
    t2 = cal[cal["model"] == "T2axi"]
    assert t2["target"].unique().tolist() == [
        "malignant",
        "benign vs rest",
        "borderline vs rest",
        "all classes",
    ]
    decision = pd.read_csv(run / "results/metrics/decision.tsv", sep="\t")
    assert {"fusion: image", "fusion: clinical", "fusion: image+clinical"} <= set(decision["model"])
    subgroups = pd.read_csv(run / "results/metrics/subgroups.tsv", sep="\t")
    assert set(subgroups[subgroups["variable"] == "menopausal"]["group"]) <= {"pre", "post"}
    html = (run / "results/report/index.html").read_text()
    assert "<h2>External validation (leave one hospital out)" in html


def test_external_validation_and_checklist_render_in_headless_chromium(run, tmp_path):
    from test_workflow import rendered_dom

    dom = rendered_dom(run / "results/report/index.html", tmp_path)
    for heading in (
        "External validation (leave one hospital out)",
        "Calibration",
        "Decision curves",
        "Subgroups",
        "Reporting checklist (TRIPOD+AI, CLAIM)",
    ):
        assert f"<h2>{heading}" in dom, heading
    assert "menopausal: post" in dom or "post" in dom
