"""Several classes: most-probable-class calls, one-vs-rest metrics per class, macro means,
the K x K confusion matrix, and bootstrap intervals of the macro metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from gynmri.evaluation.confusion import counts, rates
from gynmri.evaluation.scoring import prob_columns
from gynmri.evaluation.stats import bootstrap_ci, resampled_auc, vectorised


def predicted_class(scores: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Return each row's most probable class index (ties go to the earlier class)."""
    return scores[prob_columns(classes)].to_numpy().argmax(axis=1)


def class_index(scores: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Return each row's true class index; raise ValueError on a label outside ``classes``."""
    unknown = sorted(set(scores["label"]) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the task classes {classes}")
    return scores["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()


def macro_rows(probs: np.ndarray, n_classes: int, what: str):
    """Return a vectorised macro SS-Avg or AUC over bootstrap rows of (true class, patient index).

    ``bootstrap_ci`` resamples 1-D arrays; here ``y`` holds true class indices and ``s`` the
    patient indices into ``probs`` (n, K), so one resample picks whole patients.
    """
    pred_all = probs.argmax(axis=1)

    @vectorised
    def macro(y: np.ndarray, s: np.ndarray) -> np.ndarray:
        values = []
        for c in range(n_classes):
            truth = y == c
            if what == "auc":
                values.append(resampled_auc(truth, probs[:, c], s))
            else:
                values.append(rates(counts(truth, pred_all[s] == c))["ss_avg"])
        return np.mean(values, axis=0)  # NaN when a class is missing from the resample

    return macro


def multiclass_metrics(
    scores: pd.DataFrame, classes: list[str], *, n_boot: int = 0, seed: int = 0
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Return (macro summary, per-class rows, confusion counts) of most-probable-class calls.

    Per class c (one vs rest): sensitivity = share of class-c patients called c, specificity =
    share of the others not called c, SS-Avg their mean, AUC of p_c. The summary holds
    ``top1_accuracy``, ``macro_ss_avg`` and ``macro_auc`` (means over the classes; NaN when a
    class has no patient) and, with ``n_boot > 0``, percentile-bootstrap intervals of the macro
    metrics over patients. The confusion table has one row per (true, predicted) class pair,
    zeros included.
    """
    truth = class_index(scores, classes)
    probs = scores[prob_columns(classes)].to_numpy(float)
    pred = probs.argmax(axis=1)
    rows = []
    for c, name in enumerate(classes):
        y = truth == c
        counted = counts(y, pred == c)
        r = rates(counted)
        auc = roc_auc_score(y, probs[:, c]) if 0 < y.sum() < len(y) else np.nan
        rows.append(
            {
                "class": name,
                "n": int(y.sum()),
                **counted,
                "sensitivity": r["sensitivity"],
                "specificity": r["specificity"],
                "ss_avg": r["ss_avg"],
                "auc": auc,
            }
        )
    per_class = pd.DataFrame(rows)
    summary = {
        "top1_accuracy": float((pred == truth).mean()) if len(truth) else np.nan,
        "macro_ss_avg": float(per_class["ss_avg"].mean(skipna=False)),
        "macro_auc": float(per_class["auc"].mean(skipna=False)),
    }
    if n_boot > 0:
        index = np.arange(len(truth))
        for what in ("ss_avg", "auc"):
            ci = bootstrap_ci(
                truth, index, macro_rows(probs, len(classes), what), n_boot, seed=seed
            )
            summary[f"macro_{what}_lo"], summary[f"macro_{what}_hi"] = ci
    table = pd.crosstab(
        pd.Categorical(np.asarray(classes)[truth], categories=classes),
        pd.Categorical(np.asarray(classes)[pred], categories=classes),
        dropna=False,
    )
    confusion = (
        table.rename_axis(index="true", columns="predicted").stack().rename("n").reset_index()
    )
    confusion["true"] = confusion["true"].astype(str)
    confusion["predicted"] = confusion["predicted"].astype(str)
    return summary, per_class, confusion
