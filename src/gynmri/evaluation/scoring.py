"""Scores: slice probabilities -> patient scores -> ensemble scores, and "the best ensemble".

One implementation serves the evaluation (out-of-fold predictions of every patient), the reader
study, the clinical fusion, the automatic-selection evaluation and ``gynmri predict`` (one new
exam, scored by every fold model), so that a probability means the same everywhere.

Predictions hold one column ``p_<class>`` per class. The positive score of a patient is the sum
of its positive-class probabilities, so the same code serves two classes or more.

**The best ensemble** is the first row of the ensembles table: every combination of the
configured sequences, single sequences included, ranked by ``evaluate.rank_by`` (ties: the
higher AUC, then fewer sequences), those that score every patient of the cohort first (an
ensemble of sequences some hospitals lack reads fewer patients). The report's ROC figure, the model compared with the
readers, the slice-selection evaluation and the model ``gynmri predict`` applies (the manifest)
all take it from :func:`best_ensemble`.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import numpy as np
import pandas as pd

PREDICTION_KEYS = ["patient", "sequence", "fold", "label"]
AGGREGATE_RULES = ("mean", "max", "vote")
COMBINE_RULES = ("mean", "max")


def prob_columns(classes: list[str]) -> list[str]:
    """Return the probability column names of the classes, in class order."""
    return [f"p_{c}" for c in classes]


def _renormalized_max(grouped, cols: list[str]) -> pd.DataFrame:
    out = grouped[cols].max()
    return out.div(out.sum(axis=1), axis=0)


def patient_scores(predictions: pd.DataFrame, classes: list[str], aggregate: str) -> pd.DataFrame:
    """Return one row per (patient, sequence, fold) with class probabilities from its slices.

    ``aggregate``: mean of slice probabilities, max (per class, renormalized) or vote (share of
    slices whose most probable class is each class).
    """
    if aggregate not in AGGREGATE_RULES:
        raise ValueError(f"unknown aggregate rule '{aggregate}' ({', '.join(AGGREGATE_RULES)})")
    cols = prob_columns(classes)
    grouped = predictions.groupby(PREDICTION_KEYS, sort=True)
    if aggregate == "mean":
        out = grouped[cols].mean()
    elif aggregate == "max":
        out = _renormalized_max(grouped, cols)
    else:
        winner = predictions[cols].to_numpy().argmax(axis=1)
        onehot = pd.DataFrame(np.eye(len(cols))[winner], columns=cols, index=predictions.index)
        out = (
            pd.concat([predictions[PREDICTION_KEYS], onehot], axis=1)
            .groupby(PREDICTION_KEYS)[cols]
            .mean()
        )
    out["n_slices"] = grouped.size()
    return out.reset_index()


def average_folds(scores: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Return patient scores averaged over the fold models that scored each patient (a new exam
    is scored by every fold's model); the fold column becomes 'all'."""
    cols = prob_columns(classes)
    keys = ["patient", "sequence", "label"]
    out = scores.groupby(keys, sort=True)[cols].mean().reset_index()
    out.insert(2, "fold", "all")
    return out


def positive_score(scores: pd.DataFrame, positive: list[str]) -> np.ndarray:
    """Return each row's probability of belonging to a positive class."""
    return scores[prob_columns(positive)].sum(axis=1).to_numpy()


def ensemble_name(members: tuple[str, ...] | list[str]) -> str:
    """Return the name of a combination of sequences, e.g. 'T2axi+DWI'."""
    return "+".join(members)


def ensemble_members(name: str) -> tuple[str, ...]:
    """Return the sequences of an ensemble name (the inverse of :func:`ensemble_name`)."""
    return tuple(name.split("+"))


def combinations_of(sequences: list[str], min_size: int = 1) -> Iterator[tuple[str, ...]]:
    """Yield every combination of ``sequences`` of at least ``min_size`` members, by size."""
    for size in range(min_size, len(sequences) + 1):
        yield from combinations(sequences, size)


def combine_sequences(
    scores: pd.DataFrame, members: tuple[str, ...], classes: list[str], rule: str
) -> pd.DataFrame:
    """Return patient scores of one ensemble: the members' probabilities combined per patient.

    A patient missing some members is scored from the members it has; ``n_members`` says how
    many. Rule 'mean' averages, 'max' takes the per-class maximum and renormalizes.
    """
    if rule not in COMBINE_RULES:
        raise ValueError(f"unknown combine rule '{rule}' ({', '.join(COMBINE_RULES)})")
    cols = prob_columns(classes)
    part = scores[scores["sequence"].isin(members)]
    grouped = part.groupby(["patient", "fold", "label"])
    combined = grouped[cols].mean() if rule == "mean" else _renormalized_max(grouped, cols)
    combined["n_members"] = grouped.size()
    return combined.reset_index()


def best_ensemble(ensembles: pd.DataFrame) -> tuple[str, ...]:
    """Return the members of the best ensemble: the first row of the ranked ensembles table
    (single sequences included; see the module docstring)."""
    if ensembles.empty:
        raise ValueError("the ensembles table is empty: no sequence was evaluated")
    return ensemble_members(str(ensembles["ensemble"].iloc[0]))


def score_sets(
    predictions: pd.DataFrame,
    classes: list[str],
    sequences: list[str],
    evaluate: dict,
    ensembles: list[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Return patient scores of every sequence and of the ``ensembles`` named (default: every
    ensemble of 2+ sequences), by name; single sequences among ``ensembles`` are skipped."""
    scores = patient_scores(predictions, classes, evaluate["aggregate"])
    out = {s: scores[scores["sequence"] == s] for s in sequences}
    if ensembles is None:
        ensembles = [ensemble_name(m) for m in combinations_of(sequences, 2)]
    for name in ensembles:
        if name not in out:
            out[name] = combine_sequences(
                scores, ensemble_members(name), classes, evaluate["combine"]
            )
    return out


def ensemble_scores(
    predictions: pd.DataFrame, members: tuple[str, ...], classes: list[str], evaluate: dict
) -> pd.DataFrame:
    """Return the patient scores of one ensemble from slice predictions (aggregate, combine)."""
    scores = patient_scores(predictions, classes, evaluate["aggregate"])
    return combine_sequences(scores, members, classes, evaluate["combine"])


def exam_scores(
    predictions: pd.DataFrame, classes: list[str], evaluate: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (per-sequence scores, ensemble scores) of exams scored by several fold models (a
    new exam): slices -> exam per fold model (``aggregate``), the mean over the fold models,
    then the sequences present combined (``combine``)."""
    per_fold = patient_scores(predictions, classes, evaluate["aggregate"])
    per_sequence = average_folds(per_fold, classes)
    members = tuple(per_sequence["sequence"].unique())
    return per_sequence, combine_sequences(per_sequence, members, classes, evaluate["combine"])


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
