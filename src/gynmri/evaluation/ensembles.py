"""Point metrics of every ensemble at once: 2^S - 1 combinations of S sequences as arrays.

A study of 15 sequences has 32,767 ensembles; scoring each through pandas (combine, then
metrics) costs minutes. Here the patient scores become one array (sequence, patient, class),
the ensembles a boolean matrix (ensemble, sequence), and each chunk of ensembles is combined and
scored with array operations: confusion counts (:mod:`gynmri.evaluation.confusion`), ROC AUC by
mid-ranks (Mann-Whitney, equal to sklearn's), the macro means over classes, Youden thresholds
per test fold. The numbers equal the one-ensemble path (:func:`gynmri.evaluation.scoring.
combine_sequences` then :func:`gynmri.evaluation.metrics.binary_metrics`) to rounding; the tests
compare both.

A patient missing some members of an ensemble is scored from the members it has; a patient with
none does not count in that ensemble (as in ``combine_sequences``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gynmri.evaluation.confusion import counts, rates, wilson_intervals
from gynmri.evaluation.scoring import COMBINE_RULES, combinations_of, prob_columns
from gynmri.evaluation.stats import auc_rows
from gynmri.evaluation.thresholds import choose_threshold

#: Ensembles combined at once: bounds the (ensembles, patients, classes) arrays' memory.
CHUNK = 2048


@dataclass(frozen=True)
class ScoreCube:
    """Patient scores as arrays: ``probs[s, i, k]`` is sequence s's probability of class k for
    patient i (NaN where the patient lacks the sequence); patients sorted by id."""

    patients: np.ndarray
    folds: np.ndarray
    labels: np.ndarray
    sequences: list[str]
    probs: np.ndarray

    @classmethod
    def from_scores(
        cls, scores: pd.DataFrame, sequences: list[str], classes: list[str]
    ) -> ScoreCube:
        """Build the cube from patient scores (one row per patient, sequence, fold, label)."""
        people = (
            scores[["patient", "fold", "label"]]
            .drop_duplicates()
            .sort_values(["patient", "fold", "label"])
            .reset_index(drop=True)
        )
        if people["patient"].duplicated().any():
            raise ValueError("a patient has scores from two folds or with two labels")
        row = pd.Series(np.arange(len(people)), index=people["patient"])
        probs = np.full((len(sequences), len(people), len(classes)), np.nan)
        where = {name: s for s, name in enumerate(sequences)}
        part = scores[scores["sequence"].isin(where)]
        probs[part["sequence"].map(where).to_numpy(), row[part["patient"]].to_numpy()] = part[
            prob_columns(classes)
        ].to_numpy(float)
        return cls(
            people["patient"].to_numpy(),
            people["fold"].to_numpy(),
            people["label"].to_numpy(),
            list(sequences),
            probs,
        )


def membership(sequences: list[str]) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """Return every combination of ``sequences`` (in :func:`combinations_of` order) and its
    (ensemble, sequence) boolean membership matrix."""
    combos = list(combinations_of(sequences))
    index = {s: i for i, s in enumerate(sequences)}
    members = np.zeros((len(combos), len(sequences)), bool)
    for e, combo in enumerate(combos):
        members[e, [index[s] for s in combo]] = True
    return combos, members


def combine(cube: ScoreCube, members: np.ndarray, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (probabilities (E, N, K), members present (E, N)) of ensembles ``members`` (E, S):
    'mean' averages the members a patient has, 'max' takes the per-class maximum and
    renormalizes; NaN for a patient with no member."""
    if rule not in COMBINE_RULES:
        raise ValueError(f"unknown combine rule '{rule}' ({', '.join(COMBINE_RULES)})")
    present = ~np.isnan(cube.probs[:, :, 0])  # (S, N)
    count = members.astype(float) @ present  # (E, N)
    with np.errstate(invalid="ignore", divide="ignore"):
        if rule == "mean":
            total = np.einsum("es,snk->enk", members.astype(float), np.nan_to_num(cube.probs))
            out = total / count[..., None]
        else:
            filled = np.where(np.isnan(cube.probs), -np.inf, cube.probs)
            out = np.where(members[:, :, None, None], filled[None], -np.inf).max(axis=1)
            out = out / out.sum(axis=-1, keepdims=True)
    out[count == 0] = np.nan
    return out, count


def youden_thresholds(
    truth: np.ndarray, score: np.ndarray, valid: np.ndarray, folds: np.ndarray
) -> np.ndarray:
    """Return per-patient thresholds (E, N): for each test fold, Youden's threshold on the other
    folds' valid patients of the same row (as :func:`choose_threshold` picks it: the candidate
    score maximising sensitivity + specificity, ties to the lowest)."""
    out = np.full(score.shape, np.nan)
    for fold in np.unique(folds):
        train = valid & (folds != fold)[None, :]
        order = np.argsort(np.where(train, score, np.inf), axis=1, kind="stable")
        value = np.take_along_axis(np.where(train, score, np.inf), order, axis=1)
        is_train = np.take_along_axis(train, order, axis=1)
        pos = np.take_along_axis(np.broadcast_to(truth, score.shape), order, axis=1) & is_train
        neg = ~pos & is_train
        n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
        if ((n_pos == 0) | (n_neg == 0)).any():
            raise ValueError(
                "threshold rule 'youden' needs both classes among the training patients"
            )
        pos_below = np.cumsum(pos, axis=1) - pos  # positives strictly before each position
        neg_below = np.cumsum(neg, axis=1) - neg
        first = is_train & np.concatenate(
            [np.ones((len(value), 1), bool), value[:, 1:] != value[:, :-1]], axis=1
        )
        youden = (n_pos[:, None] - pos_below) / n_pos[:, None] + neg_below / n_neg[:, None]
        best = np.argmax(np.where(first, youden, -np.inf), axis=1)
        chosen = value[np.arange(len(value)), best]
        out[:, folds == fold] = chosen[:, None]
    return out


def _thresholds(truth, score, valid, folds, threshold, rule) -> np.ndarray | float:
    if rule is None:
        return threshold
    if str(rule) == "youden":
        return youden_thresholds(truth, score, valid, folds)
    return choose_threshold(truth, score, rule)  # fixed:<x>, the same for every fold


def _macro(
    probs: np.ndarray, label_index: np.ndarray, valid: np.ndarray, n_classes: int
) -> dict[str, np.ndarray]:
    """Return top-1 accuracy, macro SS-Avg and macro AUC of each row (most-probable-class calls,
    one vs rest per class; NaN when a class has no patient)."""
    called = np.nan_to_num(probs, nan=-1.0).argmax(axis=2)
    ss, auc = [], []
    for c in range(n_classes):
        truth = np.broadcast_to(label_index == c, valid.shape)
        ss.append(rates(counts(truth, called == c, valid))["ss_avg"])
        auc.append(auc_rows(truth, probs[:, :, c], valid))
    with np.errstate(invalid="ignore", divide="ignore"):
        top1 = ((called == label_index) & valid).sum(axis=1) / valid.sum(axis=1)
    return {
        "top1_accuracy": np.where(valid.any(axis=1), top1, np.nan),
        "macro_ss_avg": np.mean(ss, axis=0),
        "macro_auc": np.mean(auc, axis=0),
    }


def ensemble_point_metrics(
    scores: pd.DataFrame,
    sequences: list[str],
    classes: list[str],
    positive: list[str],
    threshold: float,
    rule: str,
    *,
    threshold_rule=None,
    wilson: bool = False,
) -> pd.DataFrame:
    """Return one row per ensemble (every combination of ``sequences``, in
    :func:`combinations_of` order): its size, missing-sequence counts, the binary metrics of
    :func:`gynmri.evaluation.metrics.binary_metrics` and the macro columns; with ``wilson``
    also PPV, NPV and the Wilson intervals of the proportions."""
    cube = ScoreCube.from_scores(scores, sequences, classes)
    combos, members = membership(sequences)
    truth = np.isin(cube.labels, positive)
    unknown = sorted(set(cube.labels) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the task classes {classes}")
    label_index = pd.Series(cube.labels).map({c: i for i, c in enumerate(classes)}).to_numpy()
    pos_cols = [classes.index(c) for c in positive]
    frames = []
    for start in range(0, len(combos), CHUNK):
        chunk = members[start : start + CHUNK]
        probs, count = combine(cube, chunk, rule)
        valid = count > 0
        score = probs[:, :, pos_cols].sum(axis=2)
        thr = _thresholds(truth, score, valid, cube.folds, threshold, threshold_rule)
        c = counts(np.broadcast_to(truth, valid.shape), score >= thr, valid)
        r = rates(c)
        table = {
            "n_sequences": chunk.sum(axis=1),
            "patients_missing_a_sequence": (valid & (count < chunk.sum(axis=1)[:, None])).sum(1),
            "patients_without_any": len(cube.patients) - valid.sum(axis=1),
            "n": valid.sum(axis=1),
            "n_positive": (valid & truth).sum(axis=1),
            **c,
            **{k: r[k] for k in ("accuracy", "sensitivity", "specificity", "ss_avg")},
            "auc": auc_rows(np.broadcast_to(truth, valid.shape), score, valid),
        }
        if wilson:
            table.update(ppv=r["ppv"], npv=r["npv"], **wilson_intervals(c))
        table.update(_macro(probs, label_index, valid, len(classes)))
        frames.append(pd.DataFrame(table))
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "ensemble", ["+".join(combo) for combo in combos])
    return out
