import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score

from gynmri.evaluation.metrics import binary_metrics, ensemble_metrics
from gynmri.evaluation.scoring import check_out_of_fold, combine_sequences, patient_scores

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
    assert table.loc[0, "accuracy"] == pytest.approx(1.0)


def test_prediction_from_training_fold_is_refused():
    pred = _predictions()
    folds = pd.DataFrame({"patient": ["P1", "P2", "P3", "P4"], "fold": [0, 0, 1, 0]})
    with pytest.raises(ValueError, match="not out-of-fold"):
        check_out_of_fold(pred, folds)


# --- confidence intervals and fitted thresholds -------------------------------------------------

CI_METRICS = ["accuracy", "sensitivity", "specificity", "ppv", "npv", "ss_avg", "auc"]


def test_metrics_with_ci_agree_with_sklearn_and_statsmodels():
    from sklearn.metrics import precision_score
    from statsmodels.stats.proportion import proportion_confint

    from gynmri.evaluation.metrics import metrics_with_ci

    rng = np.random.default_rng(11)
    for trial in range(5):
        n = int(rng.integers(30, 200))
        y = rng.random(n) < rng.uniform(0.2, 0.6)
        score = np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1)
        thr = rng.uniform(0.3, 0.7)
        m = metrics_with_ci(y, score, thr, n_boot=200, seed=trial)
        pred = score >= thr
        assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
        assert m["sensitivity"] == pytest.approx(recall_score(y, pred))
        assert m["specificity"] == pytest.approx(recall_score(~y, ~pred))
        assert m["ppv"] == pytest.approx(precision_score(y, pred))
        assert m["npv"] == pytest.approx(precision_score(~y, ~pred))
        assert m["auc"] == pytest.approx(roc_auc_score(y, score))
        counts = {
            "accuracy": (m["tp"] + m["tn"], n),
            "sensitivity": (m["tp"], m["tp"] + m["fn"]),
            "specificity": (m["tn"], m["tn"] + m["fp"]),
            "ppv": (m["tp"], m["tp"] + m["fp"]),
            "npv": (m["tn"], m["tn"] + m["fn"]),
        }
        for metric, (k, total) in counts.items():
            lo, hi = proportion_confint(k, total, method="wilson")
            assert (m[f"{metric}_lo"], m[f"{metric}_hi"]) == pytest.approx((lo, hi))
        for metric in CI_METRICS:
            assert m[f"{metric}_lo"] <= m[metric] + 1e-9 and m[metric] <= m[f"{metric}_hi"] + 1e-9
        assert m["n_boot"] == 200
        # seeded: the same call gives the same intervals
        again = metrics_with_ci(y, score, thr, n_boot=200, seed=trial)
        assert (again["auc_lo"], again["ss_avg_hi"]) == (m["auc_lo"], m["ss_avg_hi"])
    off = metrics_with_ci(y, score, 0.5, n_boot=0)
    assert np.isnan(off["auc_lo"]) and not np.isnan(off["accuracy_lo"])


def test_ci_columns_only_when_asked():
    from gynmri.evaluation.metrics import sequence_metrics

    scores = patient_scores(_predictions(), CLASSES, "mean")
    plain = sequence_metrics(scores, ["sarcoma"], 0.5)
    assert list(plain.columns) == ["sequence", "fold", *binary_metrics([1, 0], [1, 0], 0.5)]
    with_ci = sequence_metrics(scores, ["sarcoma"], 0.5, n_boot=100, seed=1)
    for metric in CI_METRICS:
        assert {f"{metric}_lo", f"{metric}_hi"} <= set(with_ci.columns)
    pd.testing.assert_frame_equal(with_ci[plain.columns], plain)
    pooled = with_ci[with_ci["fold"] == "all"]
    assert pooled["auc_lo"].notna().all()
    table = ensemble_metrics(
        scores, ["T2axi", "DWI"], CLASSES, ["sarcoma"], 0.5, "mean", n_boot=100
    )
    assert table["accuracy_lo"].notna().all() and "ss_avg_hi" in table


def _fold_scores():
    """Patient scores where a Youden threshold fitted with the test fold would differ."""
    rows = []
    # folds 1, 2: positives 0.7-0.9, negatives 0.1-0.3 -> Youden on them picks 0.7
    for fold, pos, neg in [(1, [0.7, 0.8], [0.1, 0.2]), (2, [0.9], [0.3])]:
        rows += [(f"P{fold}{i}", fold, "sarcoma", p) for i, p in enumerate(pos)]
        rows += [(f"N{fold}{i}", fold, "myoma", p) for i, p in enumerate(neg)]
    # fold 0 holds low-scoring sarcomas: with fold 0 included, Youden would pick 0.4
    rows += [("P00", 0, "sarcoma", 0.4), ("P01", 0, "sarcoma", 0.5), ("N00", 0, "myoma", 0.05)]
    frame = pd.DataFrame(rows, columns=["patient", "fold", "label", "p_sarcoma"])
    frame["p_myoma"] = 1 - frame["p_sarcoma"]
    frame["sequence"] = "T2axi"
    return frame


def test_choose_threshold_rules():
    from gynmri.evaluation.thresholds import choose_threshold

    y = np.array([0, 0, 1, 1, 0, 1], bool)
    s = np.array([0.1, 0.35, 0.4, 0.8, 0.6, 0.65])
    assert choose_threshold(y, s, "fixed:0.3") == 0.3
    assert choose_threshold(y, s, 0.5) == 0.5
    # s >= 0.4: sens 3/3, spec 2/3 (J=1.67); s >= 0.65: sens 2/3, spec 3/3 (1.67); tie -> lower
    assert choose_threshold(y, s, "youden") == pytest.approx(0.4)
    with pytest.raises(ValueError, match="unknown threshold rule"):
        choose_threshold(y, s, "median")
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold(np.ones(3, bool), s[:3], "youden")


def test_threshold_of_a_fold_is_fitted_on_the_other_folds_only():
    from gynmri.evaluation.metrics import sequence_metrics
    from gynmri.evaluation.thresholds import choose_threshold, per_fold_thresholds

    scores = _fold_scores()
    truth = scores["label"].eq("sarcoma").to_numpy()
    assert choose_threshold(truth, scores["p_sarcoma"].to_numpy(), "youden") == pytest.approx(
        0.4
    )  # leaky
    thr = per_fold_thresholds(scores, ["sarcoma"], "youden")
    assert thr.loc[0] == pytest.approx(0.7)  # fitted on folds 1 and 2 only
    # changing the test fold's own scores never changes its threshold
    moved = scores.copy()
    in_test = moved["fold"] == 0
    moved.loc[in_test, "p_sarcoma"] = [0.99, 0.98, 0.01]
    moved.loc[in_test, "p_myoma"] = 1 - moved.loc[in_test, "p_sarcoma"]
    assert per_fold_thresholds(moved, ["sarcoma"], "youden").loc[0] == thr.loc[0]
    # applied: fold 0's sarcomas (0.4, 0.5) fall below 0.7 -> missed
    table = sequence_metrics(scores, ["sarcoma"], 0.5, threshold_rule="youden").set_index("fold")
    assert table.loc["0", "threshold"] == pytest.approx(0.7)
    assert table.loc["0", "tp"] == 0 and table.loc["0", "fn"] == 2
    assert table.loc["all", "fn"] == 2 and np.isnan(table.loc["all", "threshold"])
    fixed = per_fold_thresholds(scores, ["sarcoma"], "fixed:0.5")
    assert (fixed == 0.5).all() and list(fixed.index) == [0, 1, 2]


def test_evaluate_all_with_bootstrap_and_threshold_rule():
    from gynmri.config import section
    from gynmri.evaluation.metrics import evaluate_all

    rng = np.random.default_rng(3)
    rows = []
    for i in range(60):
        label = "sarcoma" if i % 3 == 0 else "myoma"
        for seq in ("T2axi", "DWI"):
            for s in range(2):
                p = float(np.clip(0.25 + 0.4 * (label == "sarcoma") + rng.normal(0, 0.2), 0, 1))
                rows.append((f"P{i:02d}", seq, i % 4, label, s, 1 - p, p))
    pred = pd.DataFrame(
        rows,
        columns=["patient", "sequence", "fold", "label", "slice_index", "p_myoma", "p_sarcoma"],
    )
    folds = pred[["patient", "fold"]].drop_duplicates()
    cfg = section("evaluate", {"aggregate": "mean", "threshold": 0.5, "combine": "mean"})
    plain = evaluate_all(pred, folds, CLASSES, ["sarcoma"], ["T2axi", "DWI"], cfg)
    cfg.update(bootstrap=200, seed=0, threshold_rule="youden")
    seq, ens, roc = evaluate_all(pred, folds, CLASSES, ["sarcoma"], ["T2axi", "DWI"], cfg)
    assert "auc_lo" not in plain[0] and "auc_lo" in seq and "auc_lo" in ens
    assert seq.loc[seq["fold"] == "all", "auc_lo"].notna().all()
    assert (ens["auc_lo"] <= ens["auc"]).all() and (ens["auc"] <= ens["auc_hi"]).all()
    pd.testing.assert_frame_equal(roc, plain[2])
