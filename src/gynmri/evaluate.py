"""Evaluation: slice probabilities -> patient scores -> metrics per sequence and per ensemble.

Predictions hold one column ``p_<class>`` per class. Binary metrics take the configured positive
classes as positive: the positive score of a patient is the sum of its positive-class
probabilities, so the same code serves two classes or more.

Confidence intervals (:func:`metrics_with_ci`) are patient-level: Wilson intervals for the
proportions, a seeded percentile bootstrap over patients for SS-Avg and AUC. They are off by
default (``n_boot=0``) and switched on by passing ``n_boot`` to :func:`evaluate_all`.

Three or more classes are also evaluated as such
(:func:`multiclass_metrics`): the predicted class is the most probable one, each class gets
one-vs-rest sensitivity, specificity, SS-Avg and AUC, their means are the macro SS-Avg and macro
AUC, and the K x K confusion matrix is kept in long form. Named binary summaries (task
``summaries``: a name and the classes it counts as positive) are binary metrics of the same
scores with their own positive classes (:func:`summary_metrics`).

Decision thresholds are either fixed or fitted (:func:`choose_threshold`); a fitted threshold
must come from training data only, so :func:`per_fold_thresholds` fits the threshold of each
test fold on the other folds' out-of-fold scores and never on the fold it is applied to.
"""

from __future__ import annotations

import numbers
from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from .stats import auc_rows, bootstrap_ci, ss_avg_rows, vectorised, wilson_interval

PREDICTION_KEYS = ["patient", "sequence", "fold", "label"]
#: Proportions that get Wilson intervals: metric -> (successes, trials) from the confusion counts.
WILSON_METRICS = {
    "accuracy": (("tp", "tn"), ("tp", "tn", "fp", "fn")),
    "sensitivity": (("tp",), ("tp", "fn")),
    "specificity": (("tn",), ("tn", "fp")),
    "ppv": (("tp",), ("tp", "fp")),
    "npv": (("tn",), ("tn", "fn")),
}
#: Metrics that get percentile-bootstrap intervals over patients.
BOOTSTRAP_METRICS = ("ss_avg", "auc")
#: Multi-class summary columns added to every sequence and ensemble row.
MACRO_METRICS = ("top1_accuracy", "macro_ss_avg", "macro_auc")
#: What ensembles can be ranked by (config evaluate/rank_by).
RANK_METRICS = ("ss_avg", "auc", "macro_ss_avg", "macro_auc")


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
    """Return n, accuracy, sensitivity, specificity, SS-Avg and ROC AUC of binary decisions.

    A patient is called positive when ``score >= threshold``; ``threshold`` may also be an array
    with one threshold per patient (e.g. from :func:`per_fold_thresholds`).
    """
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


def metrics_with_ci(y_true: np.ndarray, score: np.ndarray, threshold, n_boot: int = 2000,
                    seed: int = 0, level: float = 0.95) -> dict:  # fmt: skip
    """Return :func:`binary_metrics` plus PPV, NPV and confidence intervals.

    ``<metric>_lo``/``<metric>_hi`` are Wilson score intervals for accuracy, sensitivity,
    specificity, ppv and npv, and percentile-bootstrap intervals over patients (``n_boot``
    resamples from ``seed``, see :func:`gynmri.stats.bootstrap_ci`) for ss_avg and auc. In the
    bootstrap, SS-Avg and AUC are undefined in a resample holding one class only; such resamples
    are skipped and counted in ``boot_skipped``. ``n_boot=0`` leaves the bootstrap intervals NaN.
    ``threshold``: a number, or one per patient.
    """
    y = np.asarray(y_true, bool)
    s = np.asarray(score, float)
    out = binary_metrics(y, s, threshold)
    tp, fp, tn, fn = out["tp"], out["fp"], out["tn"], out["fn"]
    out["ppv"] = tp / (tp + fp) if tp + fp else np.nan
    out["npv"] = tn / (tn + fn) if tn + fn else np.nan
    for metric, (num, den) in WILSON_METRICS.items():
        k, n = sum(out[c] for c in num), sum(out[c] for c in den)
        out[f"{metric}_lo"], out[f"{metric}_hi"] = wilson_interval(k, n, level)
    # SS-Avg depends on the decisions only: bootstrap them (thresholds may differ per patient)
    decisions = (s >= threshold).astype(float)
    ss = bootstrap_ci(y, decisions, ss_avg_rows(0.5), n_boot, level, seed)
    auc = bootstrap_ci(y, s, auc_rows, n_boot, level, seed)
    out["ss_avg_lo"], out["ss_avg_hi"] = ss
    out["auc_lo"], out["auc_hi"] = auc
    out["n_boot"], out["boot_skipped"] = max(int(n_boot), 0), auc.n_skipped if n_boot > 0 else 0
    return out


def choose_threshold(y_true: np.ndarray, score: np.ndarray, rule) -> float:
    """Return the decision threshold (positive when ``score >= threshold``) given by ``rule``.

    ``rule``: ``"fixed:<x>"`` (or a number) returns x; ``"youden"`` returns the score that
    maximises sensitivity + specificity (Youden's J) on ``y_true``/``score``, ties going to the
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
    pred = s[None, :] >= candidates[:, None]
    sens = (pred & y).sum(axis=1) / y.sum()
    spec = (~pred & ~y).sum(axis=1) / (~y).sum()
    return float(candidates[np.argmax(sens + spec)])  # argmax: first = lowest threshold


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


def _row_metrics(truth, score, threshold, n_boot: int, seed: int, bootstrap: bool) -> dict:
    """Metrics of one row: plain (n_boot=0), or with Wilson and (if ``bootstrap``) bootstrap CIs."""
    if n_boot <= 0:
        return binary_metrics(truth, score, threshold)
    return metrics_with_ci(truth, score, threshold, n_boot=n_boot if bootstrap else 0, seed=seed)


def _thresholds(scores: pd.DataFrame, positive: list[str], threshold: float, threshold_rule):
    """Return (per-patient thresholds, per-fold Series or None) for a set of patient scores."""
    if threshold_rule is None:
        return threshold, None
    per_fold = per_fold_thresholds(scores, positive, threshold_rule)
    return scores["fold"].map(per_fold).to_numpy(float), per_fold


def _macro(scores: pd.DataFrame, classes: list[str] | None, n_boot: int, seed: int) -> dict:
    """Return the multi-class summary columns of a score set ({} when ``classes`` is None)."""
    if classes is None:
        return {}
    return multiclass_metrics(scores, classes, n_boot=n_boot, seed=seed)[0]


def _metrics_rows(scores: pd.DataFrame, positive: list[str], threshold: float, n_boot: int = 0,
                  seed: int = 0, threshold_rule=None, classes=None, **ids) -> list[dict]:  # fmt: skip
    """Return pooled ('all') and per-fold metric rows for one set of patient scores.

    With ``n_boot > 0`` every row gets Wilson intervals and the pooled row also bootstrap
    intervals (per-fold rows skip the bootstrap). With ``threshold_rule`` each fold is called
    at the threshold fitted on the other folds, and a ``threshold`` column tells which (NaN on
    the pooled row).
    """
    rows = []
    truth = scores["label"].isin(positive).to_numpy()
    score = positive_score(scores, positive)
    row_thr, per_fold = _thresholds(scores, positive, threshold, threshold_rule)
    extra = {"threshold": np.nan} if per_fold is not None else {}
    rows.append({**ids, "fold": "all", **_row_metrics(truth, score, row_thr, n_boot, seed, True),
                 **extra, **_macro(scores, classes, n_boot, seed)})  # fmt: skip
    for fold, part in scores.groupby("fold"):
        t = part["label"].isin(positive).to_numpy()
        thr = threshold if per_fold is None else per_fold[fold]
        extra = {"threshold": thr} if per_fold is not None else {}
        rows.append(
            {
                **ids,
                "fold": str(fold),
                **_row_metrics(t, positive_score(part, positive), thr, n_boot, seed, False),
                **extra,
                **_macro(part, classes, 0, seed),
            }
        )
    return rows


def pooled_metrics(scores: pd.DataFrame, positive: list[str], threshold: float, *,
                   classes: list[str] | None = None, n_boot: int = 0, seed: int = 0,
                   threshold_rule=None) -> dict:  # fmt: skip
    """Return the pooled metrics row of one set of patient scores (as in :func:`sequence_metrics`)."""
    row = _metrics_rows(scores, positive, threshold, n_boot, seed, threshold_rule, classes)[0]
    row.pop("fold")
    return row


def sequence_metrics(scores: pd.DataFrame, positive: list[str], threshold: float, *,
                     n_boot: int = 0, seed: int = 0, threshold_rule=None,
                     classes: list[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """Return metrics per sequence, pooled over out-of-fold patients and per fold.

    ``classes``: add the multi-class columns :data:`MACRO_METRICS` (and their bootstrap
    intervals on pooled rows).

    ``n_boot > 0`` adds confidence-interval columns (see :func:`metrics_with_ci`; the bootstrap
    only on the pooled rows). ``threshold_rule`` (e.g. "youden") replaces the fixed
    ``threshold`` by per-fold thresholds fitted on the other folds (:func:`per_fold_thresholds`).
    """
    rows = []
    for sequence, part in scores.groupby("sequence", sort=False):
        rows.extend(_metrics_rows(part, positive, threshold, n_boot, seed, threshold_rule,
                                  classes, sequence=sequence))  # fmt: skip
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
                     threshold: float, rule: str, *, n_boot: int = 0, seed: int = 0,
                     threshold_rule=None, rank_by: str = "ss_avg") -> pd.DataFrame:  # fmt: skip
    """Return pooled metrics of every non-empty combination of sequences, best first.

    Rows carry the binary metrics of the positive classes and the multi-class columns
    :data:`MACRO_METRICS`; ``rank_by`` (ss_avg, auc, macro_ss_avg, macro_auc) orders them,
    ties going to the higher AUC and then to fewer sequences.

    ``n_boot > 0`` adds confidence-interval columns (:func:`metrics_with_ci`); each combination
    then costs one bootstrap (about 0.1 s for 2000 resamples of 263 patients), so with many
    sequences (2^S - 1 combinations) keep S or ``n_boot`` small. ``threshold_rule``: per-fold
    thresholds fitted on the other folds of each combination's scores.
    """
    all_patients = scores["patient"].nunique()
    rows = []
    for size in range(1, len(sequences) + 1):
        for members in combinations(sequences, size):
            combined = combine_sequences(scores, members, classes, rule)
            truth = combined["label"].isin(positive).to_numpy()
            thr, _ = _thresholds(combined, positive, threshold, threshold_rule)
            metrics = _row_metrics(truth, positive_score(combined, positive), thr, n_boot, seed,
                                   True)  # fmt: skip
            rows.append({
                "ensemble": "+".join(members), "n_sequences": size,
                "patients_missing_a_sequence": int((combined["n_members"] < size).sum()),
                "patients_without_any": all_patients - len(combined),
                **metrics, **_macro(combined, classes, n_boot, seed),
            })  # fmt: skip
    table = pd.DataFrame(rows)
    if rank_by not in table:
        raise ValueError(f"cannot rank ensembles by '{rank_by}' ({', '.join(RANK_METRICS)})")
    second = "macro_auc" if rank_by.startswith("macro") else "auc"
    return table.sort_values(
        [rank_by, second, "n_sequences"], ascending=[False, False, True]
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
                 sequences: list[str], cfg: dict, *, n_boot: int = 0, seed: int = 0,
                 threshold_rule=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Return (per-sequence metrics, ensemble metrics, ROC points) from out-of-fold predictions.

    ``n_boot > 0``: add confidence intervals (Wilson; bootstrap of ``n_boot`` resamples from
    ``seed`` for SS-Avg and AUC on pooled rows). ``threshold_rule``: e.g. "youden", fitted per
    test fold on the other folds, replacing ``cfg["threshold"]``.
    """
    check_out_of_fold(predictions, folds)
    scores = patient_scores(predictions, classes, cfg["aggregate"])
    opts = {"n_boot": n_boot, "seed": seed, "threshold_rule": threshold_rule}
    per_sequence = sequence_metrics(scores, positive, cfg["threshold"], classes=classes, **opts)
    ensembles = ensemble_metrics(
        scores, sequences, classes, positive, cfg["threshold"], cfg["combine"],
        rank_by=cfg.get("rank_by", "ss_avg"), **opts,
    )  # fmt: skip
    curves = [roc_points(scores[scores["sequence"] == s], positive, s) for s in sequences]
    best = ensembles[ensembles["n_sequences"] > 1]
    if len(best):
        name = best["ensemble"].iloc[0]
        combined = combine_sequences(scores, tuple(name.split("+")), classes, cfg["combine"])
        curves.append(roc_points(combined, positive, f"ensemble {name}"))
    return per_sequence, ensembles, pd.concat(curves, ignore_index=True)


# --- several classes -------------------------------------------------------------------------


def predicted_class(scores: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Return each row's most probable class index (ties go to the earlier class)."""
    return scores[prob_columns(classes)].to_numpy().argmax(axis=1)


def _class_index(scores: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """Return each row's true class index; raise ValueError on a label outside ``classes``."""
    unknown = sorted(set(scores["label"]) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the task classes {classes}")
    return scores["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()


def _macro_rows(probs: np.ndarray, n_classes: int, what: str):
    """Return a vectorised macro metric over bootstrap rows of (true class, patient index).

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
                values.append(auc_rows(truth, probs[s, c]))
                continue
            called = pred_all[s] == c
            n_pos, n_neg = truth.sum(axis=1), (~truth).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                sens = (called & truth).sum(axis=1) / n_pos
                spec = (~called & ~truth).sum(axis=1) / n_neg
            values.append(np.where((n_pos > 0) & (n_neg > 0), (sens + spec) / 2, np.nan))
        return np.mean(values, axis=0)  # NaN when a class is missing from the resample

    return macro


def multiclass_metrics(scores: pd.DataFrame, classes: list[str], *, n_boot: int = 0,
                       seed: int = 0) -> tuple[dict, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Return (macro summary, per-class rows, confusion counts) of most-probable-class calls.

    Per class c (one vs rest): sensitivity = share of class-c patients called c, specificity =
    share of the others not called c, SS-Avg their mean, AUC of p_c. The summary holds
    ``top1_accuracy``, ``macro_ss_avg`` and ``macro_auc`` (means over the classes; NaN when a
    class has no patient) and, with ``n_boot > 0``, percentile-bootstrap intervals of the macro
    metrics over patients. The confusion table has one row per (true, predicted) class pair,
    zeros included.
    """
    truth = _class_index(scores, classes)
    probs = scores[prob_columns(classes)].to_numpy(float)
    pred = probs.argmax(axis=1)
    rows = []
    for c, name in enumerate(classes):
        y, called = truth == c, pred == c
        tp, fn = int((called & y).sum()), int((~called & y).sum())
        fp, tn = int((called & ~y).sum()), int((~called & ~y).sum())
        sens = tp / (tp + fn) if tp + fn else np.nan
        spec = tn / (tn + fp) if tn + fp else np.nan
        auc = roc_auc_score(y, probs[:, c]) if 0 < y.sum() < len(y) else np.nan
        rows.append({"class": name, "n": int(y.sum()), "tp": tp, "fp": fp, "tn": tn, "fn": fn,
                     "sensitivity": sens, "specificity": spec,
                     "ss_avg": (sens + spec) / 2, "auc": auc})  # fmt: skip
    per_class = pd.DataFrame(rows)
    summary = {
        "top1_accuracy": float((pred == truth).mean()) if len(truth) else np.nan,
        "macro_ss_avg": float(per_class["ss_avg"].mean(skipna=False)),
        "macro_auc": float(per_class["auc"].mean(skipna=False)),
    }
    if n_boot > 0:
        index = np.arange(len(truth))
        for what in ("ss_avg", "auc"):
            ci = bootstrap_ci(truth, index, _macro_rows(probs, len(classes), what), n_boot,
                              seed=seed)  # fmt: skip
            summary[f"macro_{what}_lo"], summary[f"macro_{what}_hi"] = ci
    counts = pd.crosstab(
        pd.Categorical(np.asarray(classes)[truth], categories=classes),
        pd.Categorical(np.asarray(classes)[pred], categories=classes),
        dropna=False,
    )
    confusion = (
        counts.rename_axis(index="true", columns="predicted").stack().rename("n").reset_index()
    )
    confusion["true"] = confusion["true"].astype(str)
    confusion["predicted"] = confusion["predicted"].astype(str)
    return summary, per_class, confusion


def summary_metrics(scores: pd.DataFrame, summaries: dict[str, list[str]], threshold, *,
                    n_boot: int = 0, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Return one row of binary metrics per named summary (name -> its positive classes).

    Each summary calls a patient positive when the summed probability of its positive classes
    reaches ``threshold``; intervals as in :func:`metrics_with_ci` when ``n_boot > 0``.
    """
    rows = []
    for name, positive in summaries.items():
        truth = scores["label"].isin(positive).to_numpy()
        row = _row_metrics(truth, positive_score(scores, positive), threshold, n_boot, seed, True)
        rows.append({"summary": name, "positive": "+".join(positive), **row})
    return pd.DataFrame(rows)


def task_summaries(task: dict) -> dict[str, list[str]]:
    """Return the task's named binary summaries; the positive classes when none is configured."""
    named = task.get("summaries") or {}
    return dict(named) if named else {"+".join(task["positive"]) + "_vs_rest": task["positive"]}


def score_sets(predictions: pd.DataFrame, classes: list[str], sequences: list[str],
               cfg: dict) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Return patient scores of every sequence and every ensemble of 2+ sequences, by name."""
    scores = patient_scores(predictions, classes, cfg["aggregate"])
    out = {s: scores[scores["sequence"] == s] for s in sequences}
    for size in range(2, len(sequences) + 1):
        for members in combinations(sequences, size):
            out["+".join(members)] = combine_sequences(scores, members, classes, cfg["combine"])
    return out


def class_tables(sets: dict[str, pd.DataFrame], classes: list[str], summaries: dict[str, list[str]],
                 threshold, *, n_boot: int = 0, seed: int = 0,
                 kinds: dict[str, str] | None = None) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Return the per-class, confusion and binary-summary tables of named patient-score sets.

    ``sets``: name -> patient scores (patient, fold, label, p_<class>); ``kinds``: name -> what
    the set is (sequence, ensemble, fusion), written in a ``kind`` column. Keys of the result:
    ``classes`` (one row per set and class plus a 'macro' row), ``confusion`` and ``summaries``.
    """
    kinds = kinds or {}
    per_class, confusion, binary = [], [], []
    for name, scores in sets.items():
        ids = {"scores": name, "kind": kinds.get(name, "")}
        summary, rows, counts = multiclass_metrics(scores, classes, n_boot=n_boot, seed=seed)
        per_class.append(rows.assign(**ids))
        macro = {"class": "macro", "n": len(scores), "sensitivity": rows["sensitivity"].mean(),
                 "specificity": rows["specificity"].mean(), "ss_avg": summary["macro_ss_avg"],
                 "auc": summary["macro_auc"], "top1_accuracy": summary["top1_accuracy"]}  # fmt: skip
        macro.update(
            {k.removeprefix("macro_"): v for k, v in summary.items() if k.endswith(("_lo", "_hi"))}
        )
        per_class.append(pd.DataFrame([{**macro, **ids}]))
        confusion.append(counts.assign(**ids))
        binary.append(
            summary_metrics(scores, summaries, threshold, n_boot=n_boot, seed=seed).assign(**ids)
        )
    front = ["scores", "kind"]

    def ordered(frames: list[pd.DataFrame]) -> pd.DataFrame:
        table = pd.concat(frames, ignore_index=True)
        return table[front + [c for c in table.columns if c not in front]]

    return {
        "classes": ordered(per_class),
        "confusion": ordered(confusion),
        "summaries": ordered(binary),
    }
