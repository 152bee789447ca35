import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score

from gynmri.evaluate import (
    binary_metrics,
    check_out_of_fold,
    combine_sequences,
    ensemble_metrics,
    patient_scores,
)

CLASSES = ["myoma", "sarcoma"]


def test_binary_metrics_agree_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.3
    score = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    m = binary_metrics(y, score, 0.5)
    pred = score >= 0.5
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["sensitivity"] == pytest.approx(recall_score(y, pred))
    assert m["specificity"] == pytest.approx(recall_score(~y, ~pred))
    assert m["ss_avg"] == pytest.approx((m["sensitivity"] + m["specificity"]) / 2)
    assert m["auc"] == pytest.approx(roc_auc_score(y, score))


def _predictions():
    rows = []
    # patient, sequence, fold, label, per-slice sarcoma probabilities
    for patient, label, t2, dwi in [
        ("P1", "sarcoma", [0.9, 0.7], [0.8]),
        ("P2", "myoma", [0.2, 0.4, 0.3], [0.6]),
        ("P3", "sarcoma", [0.4, 0.5], None),  # no DWI
        ("P4", "myoma", [0.1], [0.1, 0.3]),
    ]:
        for seq, probs in (("T2axi", t2), ("DWI", dwi)):
            for i, p in enumerate(probs or []):
                rows.append(
                    {
                        "patient": patient,
                        "sequence": seq,
                        "fold": 0,
                        "label": label,
                        "slice_index": i,
                        "p_myoma": 1 - p,
                        "p_sarcoma": p,
                    }
                )
    return pd.DataFrame(rows)


def test_patient_scores_mean_max_vote():
    pred = _predictions()
    mean = patient_scores(pred, CLASSES, "mean").set_index(["patient", "sequence"])
    assert mean.loc[("P2", "T2axi"), "p_sarcoma"] == pytest.approx(0.3)
    assert mean.loc[("P2", "T2axi"), "n_slices"] == 3
    vote = patient_scores(pred, CLASSES, "vote").set_index(["patient", "sequence"])
    assert vote.loc[("P1", "T2axi"), "p_sarcoma"] == pytest.approx(1.0)
    assert vote.loc[("P4", "DWI"), "p_sarcoma"] == pytest.approx(0.0)
    mx = patient_scores(pred, CLASSES, "max").set_index(["patient", "sequence"])
    assert mx.loc[("P1", "T2axi"), "p_sarcoma"] == pytest.approx(0.9 / (0.9 + 0.3))


def test_ensemble_handles_missing_sequence_and_counts_it():
    scores = patient_scores(_predictions(), CLASSES, "mean")
    combined = combine_sequences(scores, ("T2axi", "DWI"), CLASSES, "mean").set_index("patient")
    assert combined.loc["P3", "n_members"] == 1
    assert combined.loc["P3", "p_sarcoma"] == pytest.approx(0.45)
    assert combined.loc["P1", "p_sarcoma"] == pytest.approx((0.8 + 0.8) / 2)
    table = ensemble_metrics(scores, ["T2axi", "DWI"], CLASSES, ["sarcoma"], 0.5, "mean")
    assert len(table) == 3
    row = table.set_index("ensemble").loc["T2axi+DWI"]
    assert row["patients_missing_a_sequence"] == 1
    assert table.set_index("ensemble").loc["DWI", "patients_without_any"] == 1
    assert list(table["ss_avg"]) == sorted(table["ss_avg"], reverse=True)


def test_three_classes_positive_score_sums_positive_classes():
    pred = pd.DataFrame(
        {
            "patient": ["A", "B"],
            "sequence": "T2axi",
            "fold": 0,
            "label": ["benign", "malignant"],
            "slice_index": 0,
            "p_benign": [0.7, 0.1],
            "p_borderline": [0.2, 0.3],
            "p_malignant": [0.1, 0.6],
        }
    )
    scores = patient_scores(pred, ["benign", "borderline", "malignant"], "mean")
    table = ensemble_metrics(
        scores,
        ["T2axi"],
        ["benign", "borderline", "malignant"],
        ["borderline", "malignant"],
        0.5,
        "mean",
    )
    assert table.loc[0, "accuracy"] == 1.0


def test_prediction_from_training_fold_is_refused():
    pred = _predictions()
    folds = pd.DataFrame({"patient": ["P1", "P2", "P3", "P4"], "fold": [0, 0, 1, 0]})
    with pytest.raises(ValueError, match="not out-of-fold"):
        check_out_of_fold(pred, folds)
