"""What a clinical journal asks of a diagnostic model beyond SS-Avg and AUC, from the same
out-of-fold patient scores: calibration, decision curves, subgroups and external validation.

Every table here is built from patient scores (:mod:`gynmri.evaluation.scoring`): each
sequence's and the best ensemble's. The binary view is that of ``task.positive`` (the positive
score is the sum of the positive classes' probabilities); with more than two classes the
calibration is also given per class (one vs rest) and as the multiclass Brier score.

- :func:`calibration_tables`: Brier, scaled Brier, ECE, calibration intercept and slope, before
  and (``evaluate.recalibrate``) after an out-of-fold recalibration; reliability curves.
- :func:`decision_table`: net benefit over threshold probabilities (best ensemble, recalibrated,
  and the clinical fusion models where configured) against treat all / treat none.
- :func:`subgroup_table`: metrics by hospital, vendor, field strength and any cases-table column.
- :func:`external_table`: per hospital, the internal (cross-validated) metrics beside those of
  the models that never saw that hospital (``folds.scheme`` centre or both).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from gynmri.evaluation import calibration as cal
from gynmri.evaluation.decision import decision_curve
from gynmri.evaluation.metrics import metrics_with_ci
from gynmri.evaluation.scoring import (
    best_ensemble,
    combine_sequences,
    ensemble_name,
    patient_scores,
    positive_score,
    prob_columns,
)
from gynmri.evaluation.thresholds import thresholds_for

log = logging.getLogger(__name__)

#: Subgroup variables read from the exam (QC series table) or the cases table's center.
BUILTIN_SUBGROUPS = {"hospital": "center", "vendor": "vendor", "field_strength": "field_strength"}
#: Columns of the subgroup and external tables' metrics.
SUBGROUP_METRICS = [
    "n",
    "n_positive",
    "sensitivity",
    "sensitivity_lo",
    "sensitivity_hi",
    "specificity",
    "specificity_lo",
    "specificity_hi",
    "ss_avg",
    "ss_avg_lo",
    "ss_avg_hi",
    "auc",
    "auc_lo",
    "auc_hi",
]
BEST = "best ensemble"


def model_sets(
    predictions: pd.DataFrame,
    task: dict,
    sequences: list[str],
    evaluate: dict,
    ensembles: pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    """Return patient scores of every sequence and of the best ensemble, by name (the best
    ensemble of the ranked ``ensembles`` table as ``"best ensemble (<members>)"``)."""
    classes, best = task["classes"], best_ensemble(ensembles)
    scores = patient_scores(predictions, classes, evaluate["aggregate"])
    sets = {
        s: scores[scores["sequence"] == s] for s in sequences if (scores["sequence"] == s).any()
    }
    best_scores = combine_sequences(scores, best, classes, evaluate["combine"])
    sets[f"{BEST} ({ensemble_name(best)})"] = best_scores
    return sets


def with_center(sets: dict[str, pd.DataFrame], folds: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Return ``sets`` with each patient's hospital (``center``, from the folds table)."""
    centers = folds[["patient", "center"]].drop_duplicates("patient")
    return {k: v.merge(centers, on="patient", how="left") for k, v in sets.items()}


def _targets(task: dict) -> list[tuple[str, list[str]]]:
    """(name, positive classes) of each binary view calibrated: the task's positive view, then
    with more than two classes each class one vs rest."""
    classes, positive = task["classes"], task["positive"]
    out = [("+".join(positive), positive)]
    if len(classes) > 2:
        out += [(f"{c} vs rest", [c]) for c in classes if [c] != positive]
    return out


def calibration_tables(
    sets: dict[str, pd.DataFrame], task: dict, method: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (summary, curves) of the calibration of every model of ``sets``.

    summary: one row per model x target x recalibration (``none`` and, with ``method``, the
    out-of-fold recalibration: each test fold's map fitted on the other folds only), with
    :func:`gynmri.evaluation.calibration.calibration_summary`'s columns; with more than two
    classes also a row ``target = "all classes"`` holding the multiclass Brier score.
    curves: the reliability diagram's points (binned, quantile bins with Wilson intervals) and
    smoothed curve (lowess) of each row.
    """
    rows, curves = [], []
    classes = task["classes"]
    for model, scores in sets.items():
        folds = scores["fold"].astype(str).to_numpy()
        for target, positive in _targets(task):
            y = scores["label"].isin(positive).to_numpy().astype(int)
            p = positive_score(scores, positive)
            versions = _versions(p, method, model, cal.recalibrate_out_of_fold, y, p, folds)
            for how, probs in versions.items():
                ids = {"model": model, "target": target, "recalibration": how}
                rows.append({**ids, **cal.calibration_summary(y, probs)})
                curves.append(_curves(y, probs, ids))
        if len(classes) > 2:
            labels = scores["label"].map(classes.index).to_numpy()
            probs = scores[prob_columns(classes)].to_numpy()
            versions = _versions(
                probs, method, model, cal.recalibrate_multiclass_out_of_fold, labels, probs, folds
            )
            for how, pr in versions.items():
                rows.append(
                    {
                        "model": model,
                        "target": "all classes",
                        "recalibration": how,
                        "n": len(labels),
                        "brier": cal.multiclass_brier(labels, pr),
                    }
                )
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)


def _versions(raw, method: str | None, model: str, recalibrate, *args) -> dict:
    """The raw probabilities and, with ``method``, ``recalibrate(*args, method)`` (their
    out-of-fold recalibration), left out with a warning when the folds cannot fit one (a fold
    whose other folds hold one class only: small cohorts)."""
    out = {"none": raw}
    if method:
        try:
            out[method] = recalibrate(*args, method)
        except ValueError as err:
            log.warning("%s: no %s recalibration: %s", model, method, err)
    return out


def _curves(y: np.ndarray, p: np.ndarray, ids: dict) -> pd.DataFrame:
    binned = cal.reliability_bins(y, p, bins=5, strategy="quantile").assign(kind="binned")
    binned = binned.rename(columns={"mean_predicted": "predicted"})
    smooth = cal.smoothed_reliability(y, p).assign(kind="smoothed")
    return pd.concat([binned, smooth], ignore_index=True).assign(**ids)


def decision_table(
    curves_of: dict[str, tuple[np.ndarray, np.ndarray]], thresholds=None
) -> pd.DataFrame:
    """Return the decision curves of each named ``(truth, probability)`` pair, one table."""
    frames = [
        decision_curve(y, p, thresholds).assign(model=name) for name, (y, p) in curves_of.items()
    ]
    out = pd.concat(frames, ignore_index=True)
    return out[["model", *[c for c in out.columns if c != "model"]]]


def decision_inputs(
    sets: dict[str, pd.DataFrame],
    task: dict,
    method: str | None,
    fusion: pd.DataFrame | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return the (truth, probability) pairs whose decision curves the report draws: the best
    ensemble, recalibrated with ``method``, and each clinical fusion model of ``fusion``."""
    positive = task["positive"]
    best = next(name for name in sets if name.startswith(BEST))
    scores = sets[best]
    y = scores["label"].isin(positive).to_numpy()
    folds = scores["fold"].astype(str).to_numpy()
    p = positive_score(scores, positive)
    versions = _versions(p, method, best, cal.recalibrate_out_of_fold, y, p, folds)
    out = {best if how == "none" else f"{best}, {how}": (y, q) for how, q in versions.items()}
    if fusion is not None:
        for name, part in fusion.groupby("model", sort=False):
            out[f"fusion: {name}"] = (
                part["label"].isin(positive).to_numpy(),
                positive_score(part, positive),
            )
    return out


def _metrics(scores: pd.DataFrame, task: dict, evaluate: dict, row_thr) -> dict:
    y = scores["label"].isin(task["positive"]).to_numpy()
    m = metrics_with_ci(
        y,
        positive_score(scores, task["positive"]),
        row_thr,
        n_boot=evaluate["bootstrap"],
        seed=evaluate["seed"],
    )
    return {k: m.get(k, np.nan) for k in SUBGROUP_METRICS}


def subgroup_table(
    scores: pd.DataFrame,
    patients: pd.DataFrame,
    variables: list[str],
    task: dict,
    evaluate: dict,
    model: str,
) -> pd.DataFrame:
    """Return metrics of ``scores`` (one model's patient scores) by each subgroup variable.

    ``patients``: one row per patient with ``patient`` and a column per variable (the built-in
    names of :data:`BUILTIN_SUBGROUPS` or cases-table columns). Rows: the whole cohort
    (``variable = "all"``), then each group of each variable, with counts and intervals; a group
    lacking a class gets NaN where a metric needs it. Patients without a value are the group
    ``"missing"`` (counted, never dropped).
    """
    row_thr, _ = thresholds_for(
        scores, task["positive"], evaluate["threshold"], evaluate["threshold_rule"]
    )
    scores = scores.assign(_thr=np.broadcast_to(row_thr, len(scores)))
    known = [c for c in patients.columns if c in scores.columns and c != "patient"]
    merged = scores.merge(
        patients.drop(columns=known), on="patient", how="left", validate="one_to_one"
    )
    whole = _metrics(merged, task, evaluate, merged["_thr"].to_numpy())
    rows = [{"model": model, "variable": "all", "group": "all", **whole}]
    for variable in variables:
        column = BUILTIN_SUBGROUPS.get(variable, variable)
        groups = merged[column].astype("string").fillna("missing")
        for group, part in merged.groupby(groups, sort=True):
            rows.append(
                {
                    "model": model,
                    "variable": variable,
                    "group": str(group),
                    **_metrics(part, task, evaluate, part["_thr"].to_numpy()),
                }
            )
    return pd.DataFrame(rows)


def exam_attributes(series: pd.DataFrame) -> pd.DataFrame:
    """Return each patient's vendor and field strength from the QC series table (its used
    series; ``"mixed"`` when they disagree, as when series come from two scanners)."""
    used = series[series["status"] == "used"]

    def one(values: pd.Series) -> str:
        kinds = sorted({str(v) for v in values.dropna()})
        return kinds[0] if len(kinds) == 1 else ("mixed" if kinds else "missing")

    out = used.groupby("patient").agg(
        vendor=("vendor", one), field_strength=("field_strength", one)
    )
    return out.reset_index()


def external_table(
    internal: dict[str, pd.DataFrame],
    external: dict[str, pd.DataFrame],
    task: dict,
    evaluate: dict,
) -> pd.DataFrame:
    """Return internal and external metrics per hospital, side by side.

    ``internal``: the cross-validated scores of each model (k-fold), by name; ``external``: the
    same models' scores from the leave-one-centre-out folds (each patient scored by the model
    that never saw its hospital). Rows: model x hospital (``all`` = pooled) x validation.
    """
    rows = []
    for validation, sets in (("internal", internal), ("external", external)):
        for model, scores in sets.items():
            if not len(scores):
                continue
            row_thr, _ = thresholds_for(
                scores, task["positive"], evaluate["threshold"], evaluate["threshold_rule"]
            )
            scores = scores.assign(_thr=np.broadcast_to(row_thr, len(scores)))
            parts = [("all", scores), *scores.groupby("center", sort=True)]
            for hospital, part in parts:
                rows.append(
                    {
                        "model": model,
                        "hospital": hospital,
                        "validation": validation,
                        **_metrics(part, task, evaluate, part["_thr"].to_numpy()),
                    }
                )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    # per model and hospital: internal, then external (the order rows were made in)
    order = {m: i for i, m in enumerate(dict.fromkeys(out["model"]))}
    out = out.sort_values(
        ["model", "hospital"], key=lambda c: c.map(order) if c.name == "model" else c, kind="stable"
    )
    return out.reset_index(drop=True)
