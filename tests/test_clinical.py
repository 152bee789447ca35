"""The clinical-evaluation tables: calibration before/after recalibration, decision curves,
subgroups and external validation, assembled from patient scores (checked against independent
computations on the same numbers)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from gynmri.evaluation import clinical

TASK = {"classes": ["myoma", "sarcoma"], "positive": ["sarcoma"]}
EVALUATE = {
    "aggregate": "mean",
    "combine": "mean",
    "threshold": 0.5,
    "threshold_rule": None,
    "bootstrap": 50,
    "seed": 0,
}


def _predictions(n=60, seed=0, classes=("myoma", "sarcoma")):
    """Two slices per patient and sequence; scores informative but noisy; 3 folds, 3 hospitals."""
    rng = np.random.default_rng(seed)
    label = np.array([classes[i % len(classes)] for i in range(n)])
    rows = []
    for i in range(n):
        for seq, noise in (("T2", 1.0), ("DWI", 1.5)):
            for s in range(2):
                logits = rng.normal(0, noise, len(classes))
                logits[classes.index(label[i])] += 1.5
                p = np.exp(logits) / np.exp(logits).sum()
                rows.append(
                    {
                        "patient": f"P{i:03d}",
                        "sequence": seq,
                        "fold": i % 3,
                        "label": label[i],
                        "slice_index": s,
                        **{f"p_{c}": p[k] for k, c in enumerate(classes)},
                    }
                )
    preds = pd.DataFrame(rows)
    folds = pd.DataFrame(
        {
            "patient": [f"P{i:03d}" for i in range(n)],
            "label": label,
            "center": [f"h{(i // 4) % 3}" for i in range(n)],
            "fold": [i % 3 for i in range(n)],
        }
    )
    return preds, folds


def _sets(preds, folds, task=TASK, best="DWI+T2"):
    ensembles = pd.DataFrame({"ensemble": [best, "T2"]})
    return clinical.with_center(
        clinical.model_sets(preds, task, ["T2", "DWI"], EVALUATE, ensembles), folds
    )


def test_model_sets_name_the_best_ensemble_and_carry_the_hospital():
    preds, folds = _predictions()
    sets = _sets(preds, folds)
    assert list(sets) == ["T2", "DWI", "best ensemble (DWI+T2)"]
    best = sets["best ensemble (DWI+T2)"].set_index("patient")
    # mean of slices, then mean of the two sequences: computed here directly
    direct = preds.groupby(["patient", "sequence"])["p_sarcoma"].mean().groupby("patient").mean()
    np.testing.assert_allclose(best["p_sarcoma"], direct[best.index])
    assert best["center"].to_dict() == folds.set_index("patient")["center"].to_dict()


def test_calibration_rows_before_and_after_out_of_fold_recalibration():
    preds, folds = _predictions()
    sets = _sets(preds, folds)
    summary, curves = clinical.calibration_tables(sets, TASK, "platt")
    assert len(summary) == 3 * 2  # models x (none, platt)
    row = summary[(summary["model"] == "T2") & (summary["recalibration"] == "none")].iloc[0]
    t2 = sets["T2"]
    y = (t2["label"] == "sarcoma").to_numpy()
    assert row["brier"] == pytest.approx(brier_score_loss(y, t2["p_sarcoma"]))
    assert row["n"] == 60 and row["events"] == 30
    after = summary[(summary["model"] == "T2") & (summary["recalibration"] == "platt")].iloc[0]
    assert after["brier"] != pytest.approx(row["brier"])  # a different set of probabilities
    kinds = curves.groupby(["model", "recalibration"])["kind"].agg(set)
    assert all(k == {"binned", "smoothed"} for k in kinds)
    binned = curves[(curves["kind"] == "binned") & (curves["model"] == "T2")]
    assert binned.groupby("recalibration")["n"].sum().tolist() == [60, 60]


def test_multiclass_calibration_has_one_vs_rest_and_the_multiclass_brier():
    classes = ("benign", "borderline", "malignant")
    task = {"classes": list(classes), "positive": ["malignant"]}
    preds, folds = _predictions(classes=classes)
    sets = _sets(preds, folds, task)
    summary, _ = clinical.calibration_tables(sets, task, None)
    targets = summary[summary["model"] == "T2"]["target"].tolist()
    assert targets == ["malignant", "benign vs rest", "borderline vs rest", "all classes"]
    t2 = sets["T2"]
    onehot = np.eye(3)[t2["label"].map(list(classes).index)]
    probs = t2[[f"p_{c}" for c in classes]].to_numpy()
    expected = ((probs - onehot) ** 2).sum(axis=1).mean()
    got = summary[(summary["model"] == "T2") & (summary["target"] == "all classes")]["brier"]
    assert got.iloc[0] == pytest.approx(expected)


def test_decision_inputs_cover_best_recalibrated_and_fusion_models():
    preds, folds = _predictions()
    sets = _sets(preds, folds)
    fusion = sets["T2"][["patient", "fold", "label", "p_myoma", "p_sarcoma"]].assign(
        model="clinical"
    )
    inputs = clinical.decision_inputs(sets, TASK, "isotonic", fusion)
    assert list(inputs) == [
        "best ensemble (DWI+T2)",
        "best ensemble (DWI+T2), isotonic",
        "fusion: clinical",
    ]
    table = clinical.decision_table(inputs, [0.2, 0.5])
    y, p = inputs["fusion: clinical"]
    tp, fp = int((y & (p >= 0.2)).sum()), int((~y & (p >= 0.2)).sum())
    row = table[(table["model"] == "fusion: clinical") & (table["threshold"] == 0.2)].iloc[0]
    assert row["net_benefit"] == pytest.approx(tp / 60 - fp / 60 * 0.2 / 0.8)


def test_subgroups_count_every_patient_and_match_metrics_on_the_subset():
    preds, folds = _predictions()
    sets = _sets(preds, folds)
    best = sets["best ensemble (DWI+T2)"]
    patients = folds[["patient", "center"]].assign(
        vendor=["GE" if i % 2 else "SIEMENS" for i in range(60)],
        field_strength=[1.5] * 30 + [3.0] * 30,
        menopausal=["pre"] * 20 + ["post"] * 30 + [None] * 10,
    )
    table = clinical.subgroup_table(
        best, patients, ["hospital", "vendor", "menopausal"], TASK, EVALUATE, "best"
    )
    for variable, part in table[table["variable"] != "all"].groupby("variable"):
        assert part["n"].sum() == 60, variable  # nobody dropped
    assert set(table[table["variable"] == "menopausal"]["group"]) == {"pre", "post", "missing"}
    h1 = table[(table["variable"] == "hospital") & (table["group"] == "h1")].iloc[0]
    part = best[best["center"] == "h1"]
    y = (part["label"] == "sarcoma").to_numpy()
    assert h1["n"] == len(part) and h1["n_positive"] == y.sum()
    assert h1["auc"] == pytest.approx(roc_auc_score(y, part["p_sarcoma"]))
    called = part["p_sarcoma"].to_numpy() >= 0.5
    assert h1["sensitivity"] == pytest.approx(called[y].mean())
    assert h1["specificity"] == pytest.approx((~called[~y]).mean())
    assert h1["ss_avg_lo"] <= h1["ss_avg"] <= h1["ss_avg_hi"]


def test_external_table_sets_internal_and_external_per_hospital_side_by_side():
    preds, folds = _predictions()
    internal = _sets(preds, folds)
    # leave-one-centre-out: another set of scores, folds = hospitals
    ext_preds, _ = _predictions(seed=1)
    ext_folds = folds.assign(fold=folds["center"].str[1].astype(int))
    ext_preds = ext_preds.drop(columns="fold").merge(ext_folds[["patient", "fold"]], on="patient")
    external = _sets(ext_preds, ext_folds)
    table = clinical.external_table(internal, external, TASK, EVALUATE)
    best = table[table["model"] == "best ensemble (DWI+T2)"]
    assert best[["hospital", "validation"]].values.tolist() == [
        [h, v] for h in ("all", "h0", "h1", "h2") for v in ("internal", "external")
    ]
    h2 = best[(best["hospital"] == "h2") & (best["validation"] == "external")].iloc[0]
    part = external["best ensemble (DWI+T2)"]
    part = part[part["center"] == "h2"]
    assert h2["n"] == len(part)
    y = (part["label"] == "sarcoma").to_numpy()
    assert h2["auc"] == pytest.approx(roc_auc_score(y, part["p_sarcoma"]))
    only_external = clinical.external_table({}, external, TASK, EVALUATE)
    assert set(only_external["validation"]) == {"external"}


def test_exam_attributes_take_the_used_series_and_say_mixed():
    series = pd.DataFrame(
        {
            "patient": ["P1", "P1", "P2", "P2", "P3"],
            "status": ["used", "excluded", "used", "used", "excluded"],
            "vendor": ["SIEMENS", "GE", "SIEMENS", "GE", "GE"],
            "field_strength": [3.0, 1.5, 1.5, 1.5, 3.0],
        }
    )
    out = clinical.exam_attributes(series).set_index("patient")
    assert out.loc["P1"].tolist() == ["SIEMENS", "3.0"]
    assert out.loc["P2"].tolist() == ["mixed", "1.5"]
    assert "P3" not in out.index  # no used series: its subgroup rows say "missing"


def test_a_fold_that_cannot_fit_a_recalibration_leaves_it_out_with_a_warning(caplog):
    preds, folds = _predictions()
    # every sarcoma of folds 1 and 2 relabelled: fold 0's other folds hold one class only
    preds = preds.assign(label=np.where(preds["fold"] > 0, "myoma", preds["label"]))
    sets = _sets(preds, folds)
    summary, _ = clinical.calibration_tables(sets, TASK, "platt")
    assert set(summary["recalibration"]) == {"none"}
    assert "no platt recalibration: fold 0" in caplog.text
    # nor a recalibrated decision curve: the raw one only
    assert list(clinical.decision_inputs(sets, TASK, "platt")) == ["best ensemble (DWI+T2)"]
