"""Evaluation: slice probabilities -> patient scores -> metrics per sequence and per ensemble.

Predictions hold one column ``p_<class>`` per class. Binary metrics take the configured positive
classes as positive: the positive score of a patient is the sum of its positive-class
probabilities, so the same code serves two classes or more.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

PREDICTION_KEYS = ["patient", "sequence", "fold", "label"]


def prob_columns(classes: list[str]) -> list[str]:
    """Return the probability column names of the classes, in class order."""
    return [f"p_{c}" for c in classes]


def patient_scores(predictions: pd.DataFrame, classes: list[str], aggregate: str) -> pd.DataFrame:
    """Return one row per (patient, sequence, fold) with class probabilities from its slices.

    ``aggregate``: mean of slice probabilities, max (per class, renormalised) or vote (share of
    slices whose most probable class is each class).
    """
    cols = prob_columns(classes)
    grouped = predictions.groupby(PREDICTION_KEYS, sort=True)
    if aggregate == "mean":
        out = grouped[cols].mean()
    elif aggregate == "max":
        out = grouped[cols].max()
        out = out.div(out.sum(axis=1), axis=0)
    elif aggregate == "vote":
        winner = predictions[cols].to_numpy().argmax(axis=1)
        onehot = pd.DataFrame(np.eye(len(cols))[winner], columns=cols, index=predictions.index)
        out = (
            pd.concat([predictions[PREDICTION_KEYS], onehot], axis=1)
            .groupby(PREDICTION_KEYS)[cols]
            .mean()
        )
    else:
        raise ValueError(f"unknown aggregate rule '{aggregate}' (mean, max, vote)")
    out["n_slices"] = grouped.size()
    return out.reset_index()


def positive_score(scores: pd.DataFrame, positive: list[str]) -> np.ndarray:
    """Return each row's probability of belonging to a positive class."""
    return scores[prob_columns(positive)].sum(axis=1).to_numpy()


def binary_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict:
    """Return n, accuracy, sensitivity, specificity, SS-Avg and ROC AUC of binary decisions."""
    y_true = np.asarray(y_true, bool)
    pred = np.asarray(score) >= threshold
    tp, tn = int((pred & y_true).sum()), int((~pred & ~y_true).sum())
    fp, fn = int((pred & ~y_true).sum()), int((~pred & y_true).sum())
    sens = tp / (tp + fn) if tp + fn else np.nan
    spec = tn / (tn + fp) if tn + fp else np.nan
    auc = roc_auc_score(y_true, score) if 0 < y_true.sum() < len(y_true) else np.nan
    return {
        "n": len(y_true), "n_positive": int(y_true.sum()),
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "accuracy": (tp + tn) / len(y_true) if len(y_true) else np.nan,
        "sensitivity": sens, "specificity": spec,
        "ss_avg": np.nanmean([sens, spec]) if not (np.isnan(sens) and np.isnan(spec)) else np.nan,
        "auc": auc,
    }  # fmt: skip


def _metrics_rows(scores: pd.DataFrame, positive: list[str], threshold: float, **ids) -> list[dict]:
    """Return pooled ('all') and per-fold metric rows for one set of patient scores."""
    rows = []
    truth = scores["label"].isin(positive).to_numpy()
    score = positive_score(scores, positive)
    rows.append({**ids, "fold": "all", **binary_metrics(truth, score, threshold)})
    for fold, part in scores.groupby("fold"):
        t = part["label"].isin(positive).to_numpy()
        rows.append(
            {
                **ids,
                "fold": str(fold),
                **binary_metrics(t, positive_score(part, positive), threshold),
            }
        )
    return rows


def sequence_metrics(scores: pd.DataFrame, positive: list[str], threshold: float) -> pd.DataFrame:
    """Return metrics per sequence, pooled over out-of-fold patients and per fold."""
    rows = []
    for sequence, part in scores.groupby("sequence", sort=False):
        rows.extend(_metrics_rows(part, positive, threshold, sequence=sequence))
    return pd.DataFrame(rows)


def combine_sequences(
    scores: pd.DataFrame, members: tuple[str, ...], classes: list[str], rule: str
) -> pd.DataFrame:
    """Return patient scores of one ensemble: the members' probabilities combined per patient.

    A patient missing some members is scored from the members it has; ``n_members`` says how
    many. Rule 'mean' averages, 'max' takes the per-class maximum and renormalises.
    """
    cols = prob_columns(classes)
    part = scores[scores["sequence"].isin(members)]
    grouped = part.groupby(["patient", "fold", "label"])
    combined = grouped[cols].mean() if rule == "mean" else grouped[cols].max()
    if rule == "max":
        combined = combined.div(combined.sum(axis=1), axis=0)
    elif rule != "mean":
        raise ValueError(f"unknown combine rule '{rule}' (mean, max)")
    combined["n_members"] = grouped.size()
    return combined.reset_index()


def ensemble_metrics(scores: pd.DataFrame, sequences: list[str], classes: list[str], positive: list[str],
                     threshold: float, rule: str) -> pd.DataFrame:  # fmt: skip
    """Return pooled metrics of every non-empty combination of sequences, best SS-Avg first."""
    all_patients = scores["patient"].nunique()
    rows = []
    for size in range(1, len(sequences) + 1):
        for members in combinations(sequences, size):
            combined = combine_sequences(scores, members, classes, rule)
            truth = combined["label"].isin(positive).to_numpy()
            metrics = binary_metrics(truth, positive_score(combined, positive), threshold)
            rows.append({
                "ensemble": "+".join(members), "n_sequences": size,
                "patients_missing_a_sequence": int((combined["n_members"] < size).sum()),
                "patients_without_any": all_patients - len(combined),
                **metrics,
            })  # fmt: skip
    table = pd.DataFrame(rows)
    return table.sort_values(
        ["ss_avg", "auc", "n_sequences"], ascending=[False, False, True]
    ).reset_index(drop=True)


def roc_points(scores: pd.DataFrame, positive: list[str], name: str) -> pd.DataFrame:
    """Return the ROC curve (fpr, tpr, threshold) of pooled patient scores, labelled ``name``."""
    truth = scores["label"].isin(positive).to_numpy()
    if truth.all() or not truth.any():
        return pd.DataFrame(columns=["curve", "fpr", "tpr", "threshold"])
    fpr, tpr, thr = roc_curve(truth, positive_score(scores, positive))
    return pd.DataFrame({"curve": name, "fpr": fpr, "tpr": tpr, "threshold": np.minimum(thr, 1.0)})


def check_out_of_fold(predictions: pd.DataFrame, folds: pd.DataFrame) -> None:
    """Raise ValueError when a prediction comes from a model that trained on its patient."""
    merged = (
        predictions[["patient", "fold"]]
        .drop_duplicates()
        .merge(folds[["patient", "fold"]], on="patient", how="left", suffixes=("", "_assigned"))
    )
    bad = merged[merged["fold"] != merged["fold_assigned"]]
    if len(bad):
        raise ValueError(f"predictions not out-of-fold for patients {sorted(bad['patient'])[:5]}")


def evaluate_all(predictions: pd.DataFrame, folds: pd.DataFrame, classes: list[str], positive: list[str],
                 sequences: list[str], cfg: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Return (per-sequence metrics, ensemble metrics, ROC points) from out-of-fold predictions."""
    check_out_of_fold(predictions, folds)
    scores = patient_scores(predictions, classes, cfg["aggregate"])
    per_sequence = sequence_metrics(scores, positive, cfg["threshold"])
    ensembles = ensemble_metrics(
        scores, sequences, classes, positive, cfg["threshold"], cfg["combine"]
    )
    curves = [roc_points(scores[scores["sequence"] == s], positive, s) for s in sequences]
    best = ensembles[ensembles["n_sequences"] > 1]
    if len(best):
        name = best["ensemble"].iloc[0]
        combined = combine_sequences(scores, tuple(name.split("+")), classes, cfg["combine"])
        curves.append(roc_points(combined, positive, f"ensemble {name}"))
    return per_sequence, ensembles, pd.concat(curves, ignore_index=True)
