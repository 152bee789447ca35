"""Binary metrics of patient scores, per sequence and for every ensemble, with intervals.

Binary metrics take the configured positive classes as positive (see
:func:`gynmri.evaluation.scoring.positive_score`); counts and rates come from
:mod:`gynmri.evaluation.confusion` (NaN where a class is empty, see there).

Confidence intervals (:func:`metrics_with_ci`) are patient-level: Wilson intervals for the
proportions, a seeded percentile bootstrap over patients for SS-Avg and AUC. They are off with
``n_boot=0`` and the workflow switches them on with ``evaluate.bootstrap``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from gynmri.evaluation.classes import multiclass_metrics
from gynmri.evaluation.confusion import COUNT_COLUMNS, counts, rates, wilson_intervals
from gynmri.evaluation.ensembles import ensemble_point_metrics
from gynmri.evaluation.scoring import (
    best_ensemble,
    check_out_of_fold,
    combine_sequences,
    ensemble_members,
    ensemble_name,
    patient_scores,
    positive_score,
)
from gynmri.evaluation.stats import bootstrap_ci, resampled_auc, vectorised
from gynmri.evaluation.thresholds import thresholds_for

#: The columns of :func:`binary_metrics`, in order.
BINARY_COLUMNS = [
    "n",
    "n_positive",
    *COUNT_COLUMNS,
    "accuracy",
    "sensitivity",
    "specificity",
    "ss_avg",
    "auc",
]
#: Metrics that get percentile-bootstrap intervals over patients.
BOOTSTRAP_METRICS = ("ss_avg", "auc")
#: Prefix of the best ensemble's curve in the ROC table.
BEST_CURVE = "best ensemble"
#: What ensembles can be ranked by (config evaluate/rank_by).
RANK_METRICS = ("ss_avg", "auc", "macro_ss_avg", "macro_auc")


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC, NaN unless both classes are present."""
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else np.nan


def binary_metrics(y_true: np.ndarray, score: np.ndarray, threshold) -> dict:
    """Return n, counts, accuracy, sensitivity, specificity, SS-Avg and ROC AUC of the calls
    ``score >= threshold`` (``threshold``: a number, or one per patient)."""
    y = np.asarray(y_true, bool)
    c = counts(y, np.asarray(score) >= threshold)
    r = rates(c)
    out = {"n": len(y), "n_positive": int(y.sum()), **c, **r, "auc": _auc(y, np.asarray(score))}
    return {k: out[k] for k in BINARY_COLUMNS}


def ss_avg_rows(threshold: float):
    """Return a vectorised SS-Avg at ``threshold`` for :func:`bootstrap_ci` (one resample per
    row; NaN in a resample lacking either class)."""

    @vectorised
    def ss_avg(y: np.ndarray, s: np.ndarray) -> np.ndarray:
        return rates(counts(y, np.asarray(s) >= threshold))["ss_avg"]

    return ss_avg


def metrics_with_ci(
    y_true: np.ndarray,
    score: np.ndarray,
    threshold,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Return :func:`binary_metrics` plus PPV, NPV and confidence intervals.

    ``<metric>_lo``/``<metric>_hi`` are Wilson score intervals for accuracy, sensitivity,
    specificity, ppv and npv, and percentile-bootstrap intervals over patients (``n_boot``
    resamples from ``seed``, see :func:`gynmri.evaluation.stats.bootstrap_ci`) for ss_avg and
    auc. Resamples holding one class only are skipped and counted in ``boot_skipped``.
    ``n_boot=0`` leaves the bootstrap intervals NaN.
    """
    y = np.asarray(y_true, bool)
    s = np.asarray(score, float)
    out = binary_metrics(y, s, threshold)
    r = rates(out)
    out.update(ppv=r["ppv"], npv=r["npv"], **wilson_intervals(out, level))
    # SS-Avg depends on the decisions only: bootstrap them (thresholds may differ per patient)
    ss = bootstrap_ci(y, (s >= threshold).astype(float), ss_avg_rows(0.5), n_boot, level, seed)
    auc = bootstrap_ci(y, s, resampled_auc, n_boot, level, seed)
    out["ss_avg_lo"], out["ss_avg_hi"] = ss
    out["auc_lo"], out["auc_hi"] = auc
    out["n_boot"], out["boot_skipped"] = max(int(n_boot), 0), auc.n_skipped if n_boot > 0 else 0
    return out


def row_metrics(truth, score, threshold, n_boot: int, seed: int, bootstrap: bool) -> dict:
    """Metrics of one row: plain (n_boot=0), or with Wilson and (if ``bootstrap``) bootstrap CIs."""
    if n_boot <= 0:
        return binary_metrics(truth, score, threshold)
    return metrics_with_ci(truth, score, threshold, n_boot=n_boot if bootstrap else 0, seed=seed)


def _macro(scores: pd.DataFrame, classes: list[str] | None, n_boot: int, seed: int) -> dict:
    """Return the multi-class summary columns of a score set ({} when ``classes`` is None)."""
    if classes is None:
        return {}
    return multiclass_metrics(scores, classes, n_boot=n_boot, seed=seed)[0]


def _metrics_rows(
    scores: pd.DataFrame,
    positive: list[str],
    threshold: float,
    n_boot: int = 0,
    seed: int = 0,
    threshold_rule=None,
    classes=None,
    **ids,
) -> list[dict]:
    """Return pooled ('all') and per-fold metric rows for one set of patient scores.

    With ``n_boot > 0`` every row gets Wilson intervals and the pooled row also bootstrap
    intervals (per-fold rows skip the bootstrap). With ``threshold_rule`` each fold is called
    at the threshold fitted on the other folds, and a ``threshold`` column tells which (NaN on
    the pooled row).
    """
    truth = scores["label"].isin(positive).to_numpy()
    row_thr, per_fold = thresholds_for(scores, positive, threshold, threshold_rule)
    extra = {"threshold": np.nan} if per_fold is not None else {}
    pooled = row_metrics(truth, positive_score(scores, positive), row_thr, n_boot, seed, True)
    rows = [{**ids, "fold": "all", **pooled, **extra, **_macro(scores, classes, n_boot, seed)}]
    for fold, part in scores.groupby("fold"):
        t = part["label"].isin(positive).to_numpy()
        thr = threshold if per_fold is None else per_fold[fold]
        extra = {"threshold": thr} if per_fold is not None else {}
        metrics = row_metrics(t, positive_score(part, positive), thr, n_boot, seed, False)
        rows.append(
            {**ids, "fold": str(fold), **metrics, **extra, **_macro(part, classes, 0, seed)}
        )
    return rows


def pooled_metrics(
    scores: pd.DataFrame,
    positive: list[str],
    threshold: float,
    *,
    classes: list[str] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    threshold_rule=None,
) -> dict:
    """Return the pooled metrics row of one set of patient scores (as in :func:`sequence_metrics`)."""
    row = _metrics_rows(scores, positive, threshold, n_boot, seed, threshold_rule, classes)[0]
    row.pop("fold")
    return row


def sequence_metrics(
    scores: pd.DataFrame,
    positive: list[str],
    threshold: float,
    *,
    n_boot: int = 0,
    seed: int = 0,
    threshold_rule=None,
    classes: list[str] | None = None,
) -> pd.DataFrame:
    """Return metrics per sequence, pooled over out-of-fold patients and per fold.

    ``classes``: add the multi-class columns (top-1 accuracy, macro SS-Avg, macro AUC, and their
    bootstrap intervals on pooled rows). ``n_boot > 0`` adds confidence-interval columns (see
    :func:`metrics_with_ci`; the bootstrap only on the pooled rows). ``threshold_rule`` (e.g.
    "youden") replaces ``threshold`` by per-fold thresholds fitted on the other folds.
    """
    rows = []
    for sequence, part in scores.groupby("sequence", sort=False):
        rows.extend(
            _metrics_rows(
                part, positive, threshold, n_boot, seed, threshold_rule, classes, sequence=sequence
            )
        )
    return pd.DataFrame(rows)


#: The bootstrap columns of an ensemble row, binary and macro.
BOOTSTRAP_COLUMNS = ["ss_avg_lo", "ss_avg_hi", "auc_lo", "auc_hi", "n_boot", "boot_skipped"]
MACRO_BOOTSTRAP_COLUMNS = ["macro_ss_avg_lo", "macro_ss_avg_hi", "macro_auc_lo", "macro_auc_hi"]


def shown_ensembles(ranked: pd.DataFrame, top: int) -> list[str]:
    """Return the names of the ensembles shown in detail (bootstrap intervals, per-class
    tables): the ``top`` first of the ranked table, the best of each size and every sequence
    alone; all of them when there are at most ``top``."""
    if len(ranked) <= top:
        return list(ranked["ensemble"])
    size = ranked["n_sequences"]
    keep = (ranked.index < top) | (size == 1) | ~size.duplicated()
    return list(ranked.loc[keep, "ensemble"])


def ensemble_intervals(
    scores: pd.DataFrame, name: str, classes, positive, threshold, rule, n_boot, seed, t_rule
) -> dict:
    """Return the bootstrap-interval columns of one ensemble (its combined patient scores
    resampled as :func:`metrics_with_ci` and the macro metrics do)."""
    combined = combine_sequences(scores, ensemble_members(name), classes, rule)
    truth = combined["label"].isin(positive).to_numpy()
    thr, _ = thresholds_for(combined, positive, threshold, t_rule)
    row = metrics_with_ci(truth, positive_score(combined, positive), thr, n_boot, seed)
    out = {k: row[k] for k in BOOTSTRAP_COLUMNS}
    macro = multiclass_metrics(combined, classes, n_boot=n_boot, seed=seed)[0]
    return {**out, **{k: macro[k] for k in MACRO_BOOTSTRAP_COLUMNS}}


def ensemble_metrics(
    scores: pd.DataFrame,
    sequences: list[str],
    classes: list[str],
    positive: list[str],
    threshold: float,
    rule: str,
    *,
    n_boot: int = 0,
    seed: int = 0,
    threshold_rule=None,
    rank_by: str = "ss_avg",
    top: int = 100,
) -> pd.DataFrame:
    """Return pooled metrics of every non-empty combination of sequences, best first.

    Rows carry the binary metrics of the positive classes and the multi-class columns, computed
    for all 2^S - 1 ensembles at once (:mod:`gynmri.evaluation.ensembles`); ``rank_by``
    (ss_avg, auc, macro_ss_avg, macro_auc) orders them, ties going to the higher AUC and then
    to fewer sequences, after the ensembles that score every patient (``patients_without_any``
    0: where hospitals lack a sequence, an ensemble of it alone reads fewer patients). The first
    row is the best ensemble
    (:func:`gynmri.evaluation.scoring.best_ensemble`).

    ``n_boot > 0`` adds Wilson intervals to every row and bootstrap intervals (as
    :func:`metrics_with_ci`) to the ensembles :func:`shown_ensembles` picks with ``top``; the
    other rows have ``n_boot`` 0 and NaN bootstrap intervals.
    """
    if rank_by not in RANK_METRICS:
        raise ValueError(f"cannot rank ensembles by '{rank_by}' ({', '.join(RANK_METRICS)})")
    table = ensemble_point_metrics(
        scores, sequences, classes, positive, threshold, rule,
        threshold_rule=threshold_rule, wilson=n_boot > 0,
    )  # fmt: skip
    second = "macro_auc" if rank_by.startswith("macro") else "auc"
    # Ensembles that score every patient first: a metric over the patients an ensemble can read
    # (those with one of its sequences) is not comparable with one over the whole cohort, and
    # the best ensemble is the model compared with the readers and deployed for every patient.
    table = table.sort_values(
        ["patients_without_any", rank_by, second, "n_sequences"],
        ascending=[True, False, False, True],
    ).reset_index(drop=True)
    if n_boot <= 0:
        return table
    boot = pd.DataFrame(
        np.nan, index=table.index, columns=BOOTSTRAP_COLUMNS + MACRO_BOOTSTRAP_COLUMNS
    )
    boot[["n_boot", "boot_skipped"]] = 0
    shown = table["ensemble"].isin(shown_ensembles(table, top))
    for i in table.index[shown]:
        boot.loc[i] = ensemble_intervals(
            scores, table.at[i, "ensemble"], classes, positive, threshold, rule, n_boot, seed,
            threshold_rule,
        )  # fmt: skip
    boot[["n_boot", "boot_skipped"]] = boot[["n_boot", "boot_skipped"]].astype(int)
    macro_at = table.columns.get_loc("top1_accuracy")
    front, macro = table.iloc[:, :macro_at], table.iloc[:, macro_at:]
    return pd.concat([front, boot[BOOTSTRAP_COLUMNS], macro, boot[MACRO_BOOTSTRAP_COLUMNS]], axis=1)


def roc_points(scores: pd.DataFrame, positive: list[str], name: str) -> pd.DataFrame:
    """Return the ROC curve (fpr, tpr, threshold) of pooled patient scores, labelled ``name``."""
    truth = scores["label"].isin(positive).to_numpy()
    if truth.all() or not truth.any():
        return pd.DataFrame(columns=["curve", "fpr", "tpr", "threshold"])
    fpr, tpr, thr = roc_curve(truth, positive_score(scores, positive))
    return pd.DataFrame({"curve": name, "fpr": fpr, "tpr": tpr, "threshold": np.minimum(thr, 1.0)})


def evaluate_all(
    predictions: pd.DataFrame,
    folds: pd.DataFrame,
    classes: list[str],
    positive: list[str],
    sequences: list[str],
    evaluate: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return (per-sequence metrics, ensemble metrics, ROC points) from out-of-fold predictions.

    ``evaluate``: the config section evaluate (aggregate, threshold, combine, bootstrap, seed,
    threshold_rule, rank_by). The ROC points hold every sequence's curve and, labelled
    ``best ensemble <name>``, the best ensemble's.
    """
    check_out_of_fold(predictions, folds)
    scores = patient_scores(predictions, classes, evaluate["aggregate"])
    opts = {
        "n_boot": evaluate["bootstrap"],
        "seed": evaluate["seed"],
        "threshold_rule": evaluate["threshold_rule"],
    }
    threshold = evaluate["threshold"]
    per_sequence = sequence_metrics(scores, positive, threshold, classes=classes, **opts)
    ensembles = ensemble_metrics(
        scores,
        sequences,
        classes,
        positive,
        threshold,
        evaluate["combine"],
        rank_by=evaluate["rank_by"],
        top=evaluate["top_ensembles"],
        **opts,
    )
    curves = [roc_points(scores[scores["sequence"] == s], positive, s) for s in sequences]
    best = best_ensemble(ensembles)
    combined = combine_sequences(scores, best, classes, evaluate["combine"])
    curves.append(roc_points(combined, positive, f"{BEST_CURVE} {ensemble_name(best)}"))
    return per_sequence, ensembles, pd.concat(curves, ignore_index=True)
