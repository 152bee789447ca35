"""Decision thresholds: fixed, or fitted on training folds only (never on the patients they call).

A fitted threshold is part of the model: :func:`per_fold_thresholds` fits the threshold of each
test fold on the other folds' out-of-fold scores.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from gynmri.evaluation.confusion import counts, rates
from gynmri.evaluation.scoring import positive_score


def choose_threshold(y_true: np.ndarray, score: np.ndarray, rule) -> float:
    """Return the decision threshold (positive when ``score >= threshold``) given by ``rule``.

    ``rule``: ``"fixed:<x>"`` (or a number) returns x; ``"youden"`` returns the score that
    maximizes sensitivity + specificity (Youden's J) on ``y_true``/``score``, ties going to the
    lowest such threshold (the most sensitive; a missed positive case costs most).

    A fitted threshold is part of the model: fit it on TRAINING data only (the other folds, see
    :func:`per_fold_thresholds`), never on the patients it is evaluated on.
    """
    if isinstance(rule, numbers.Real) and not isinstance(rule, bool):
        return float(rule)
    rule = str(rule).strip()
    if rule.startswith("fixed:"):
        try:
            return float(rule.split(":", 1)[1])
        except ValueError:
            raise ValueError(
                f"threshold rule '{rule}': 'fixed:' needs a number, e.g. fixed:0.5"
            ) from None
    if rule != "youden":
        raise ValueError(f"unknown threshold rule '{rule}' (fixed:<x>, youden)")
    y = np.asarray(y_true, bool)
    s = np.asarray(score, float)
    if y.all() or not y.any():
        raise ValueError("threshold rule 'youden' needs both classes among the training patients")
    candidates = np.unique(s)  # ascending; each candidate t calls s >= t positive
    r = rates(
        counts(np.broadcast_to(y, (len(candidates), len(y))), s[None, :] >= candidates[:, None])
    )
    return float(candidates[np.argmax(r["ss_avg"])])  # argmax: first = lowest threshold


def per_fold_thresholds(scores: pd.DataFrame, positive: list[str], rule) -> pd.Series:
    """Return, per test fold, the threshold ``rule`` picks on the OTHER folds' scores.

    ``scores``: out-of-fold patient scores of one sequence or ensemble (columns patient, fold,
    label, p_<class>). The threshold of fold k is fitted with :func:`choose_threshold` on the
    patients of every fold but k (their out-of-fold scores stand in for training-set scores),
    so no patient's threshold has seen that patient. Apply it with
    ``scores["fold"].map(thresholds)``, or pass ``threshold_rule`` to the metric functions.
    """
    folds = sorted(scores["fold"].unique())
    truth = scores["label"].isin(positive).to_numpy()
    score = positive_score(scores, positive)
    fold_of = scores["fold"].to_numpy()
    out = {}
    for fold in folds:
        train = fold_of != fold
        if not train.any():
            raise ValueError(f"fold {fold} is the only fold: no other folds to fit a threshold on")
        out[fold] = choose_threshold(truth[train], score[train], rule)
    return pd.Series(out, name="threshold", dtype=float).rename_axis("fold")


def thresholds_for(scores: pd.DataFrame, positive: list[str], threshold: float, rule):
    """Return (per-patient thresholds, per-fold Series or None) for a set of patient scores:
    ``threshold`` everywhere when ``rule`` is None, else :func:`per_fold_thresholds`."""
    if rule is None:
        return threshold, None
    per_fold = per_fold_thresholds(scores, positive, rule)
    return scores["fold"].map(per_fold).to_numpy(float), per_fold
