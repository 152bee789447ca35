"""One definition of "the best ensemble": when a single sequence ranks first, the evaluation's ROC
curve, the report, the reader study, the slice-selection evaluation and the manifest (the model
gynmri predict applies) all name that sequence."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gynmri.config import load_config, section
from gynmri.evaluation.metrics import evaluate_all
from gynmri.evaluation.readers import study_model_scores
from gynmri.evaluation.scoring import best_ensemble
from gynmri.evaluation.selection import selection_tables
from gynmri.inference.manifest import build_manifest
from gynmri.report.figures import operating_points
from gynmri.report.sections import ReportInputs, render_report

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["myoma", "sarcoma"]
TASK = {"name": "t", "classes": CLASSES, "positive": ["sarcoma"], "summaries": {}}


@pytest.fixture(scope="module")
def predictions():
    """DWI separates the classes perfectly and confidently, T2axi is noise: DWI alone ranks
    first (a tie with T2axi+DWI on SS-Avg and AUC goes to fewer sequences)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        label = "sarcoma" if i % 3 == 0 else "myoma"
        for s in range(2):
            dwi = 0.999 if label == "sarcoma" else 0.001
            t2 = float(rng.uniform(0.3, 0.7))
            for sequence, p in (("T2axi", t2), ("DWI", dwi)):
                rows.append((f"P{i:02d}", sequence, i % 3, label, s, 1 - p, p))
    return pd.DataFrame(
        rows,
        columns=["patient", "sequence", "fold", "label", "slice_index", "p_myoma", "p_sarcoma"],
    )


def test_a_single_sequence_ranked_first_is_the_best_ensemble_everywhere(predictions, tmp_path):
    evaluate = section("evaluate", {})
    folds = predictions[["patient", "fold"]].drop_duplicates()
    sequences, ensembles, roc = evaluate_all(
        predictions, folds, CLASSES, ["sarcoma"], ["T2axi", "DWI"], evaluate
    )
    assert ensembles["ensemble"].tolist()[0] == "DWI" and best_ensemble(ensembles) == ("DWI",)
    assert "best ensemble DWI" in set(roc["curve"])
    assert "best ensemble DWI" in set(operating_points(sequences, ensembles)["curve"])

    name, scores = study_model_scores(predictions, ensembles, CLASSES, evaluate)
    assert name == "DWI" and len(scores) == 24

    manifest = build_manifest(
        task=TASK,
        sequences=["T2axi", "DWI"],
        folds=[0, 1, 2],
        harmonize={},
        detect={},
        evaluate=evaluate,
        ensembles=ensembles,
        rules=[],
    )
    assert manifest["ensemble"] == ["DWI"]

    selection = pd.DataFrame(
        {
            "patient": "P00",
            "sequence": "DWI",
            "fold": 0,
            "slice_index": [0],
            "score": [0.9],
            "selected": [True],
            "annotated": [True],
            "center_error_px": [1.0],
        }
    )
    _, patients = selection_tables(
        predictions, predictions, selection, ensembles, TASK, ["T2axi", "DWI"], evaluate, 1.0
    )
    assert set(patients["scores"]) == {"T2axi", "DWI"}  # the best ensemble is the DWI row

    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n")
    config = {**load_config(ROOT / "tests/configs/tiny.yaml"), "task": TASK, "evaluate": evaluate}
    inputs = ReportInputs(
        config=config,
        cohort=pd.DataFrame({"center": "a", "label": CLASSES, "patients": [16, 8]}),
        ensembles=ensembles,
        files=pd.DataFrame({"status": ["used"], "reason": [""]}),
        sequences=sequences,
        figures=dict.fromkeys(("roc", "confusion", "training"), str(png)),
    )
    assert inputs.best == "DWI"
    assert "The best ensemble (DWI)" in render_report(inputs)


def test_an_ensemble_that_cannot_score_every_patient_ranks_after_those_that_can(predictions):
    """Where a hospital lacks DWI, DWI alone reads fewer patients: however well it does on them,
    the best ensemble is one that scores every patient (the readers read them all)."""
    lacking = {f"P{i:02d}" for i in range(0, 24, 4)}  # a quarter of the patients, both classes
    gaps = predictions[~((predictions["sequence"] == "DWI") & predictions["patient"].isin(lacking))]
    evaluate = section("evaluate", {})
    folds = gaps[["patient", "fold"]].drop_duplicates()
    _, ensembles, _ = evaluate_all(gaps, folds, CLASSES, ["sarcoma"], ["T2axi", "DWI"], evaluate)
    dwi = ensembles.set_index("ensemble").loc["DWI"]
    assert dwi["patients_without_any"] == len(lacking) and dwi["ss_avg"] == 1.0
    assert ensembles["patients_without_any"].iloc[:2].tolist() == [0, 0]
    assert ensembles["ensemble"].iloc[-1] == "DWI"  # the best SS-Avg, on 18 of 24 patients
    assert best_ensemble(ensembles) == ("T2axi", "DWI")  # scores all 24, DWI where there is one
    name, scores = study_model_scores(gaps, ensembles, CLASSES, evaluate)
    assert len(scores) == 24
