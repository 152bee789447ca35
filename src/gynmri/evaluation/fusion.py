"""Clinical covariates beside the image models: a stacked logistic regression.

For each test fold k a (multinomial) logistic regression is fitted on the patients of the OTHER
folds only: its features are the image ensemble's out-of-fold class log-odds and the encoded
clinical covariates; it then scores the patients of fold k. The covariate encoding (imputation
values, categories, standardization) is fitted on the same training rows, so nothing about a
test patient reaches its own model. The result is a set of out-of-fold patient scores that the
evaluation treats like any sequence or ensemble, so image-only, clinical-only and image+clinical
are compared on the same patients with the same metrics.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from gynmri.config import section
from gynmri.evaluation.metrics import pooled_metrics
from gynmri.evaluation.scoring import (
    check_out_of_fold,
    combine_sequences,
    ensemble_name,
    patient_scores,
    prob_columns,
)
from gynmri.evaluation.tables import class_tables, task_summaries

log = logging.getLogger(__name__)

#: How a covariate is encoded: a number, log(1 + number) (skewed lab values), or categories.
ENCODINGS = ("numeric", "log", "category")
#: The fused models, in report order: name -> (uses image scores, uses covariates).
MODELS = {"image": (True, False), "clinical": (False, True), "image+clinical": (True, True)}
_EPS = 1e-4  # probability floor before taking log-odds


class FusionError(ValueError):
    """Covariates are missing, malformed, or too few to fit the stacked model."""


def image_features(scores: pd.DataFrame, classes: list[str]) -> tuple[np.ndarray, list[str]]:
    """Return the log-odds of each class against the first, from the patients' probabilities."""
    probs = np.clip(scores[prob_columns(classes)].to_numpy(float), _EPS, 1.0)
    logits = np.log(probs[:, 1:]) - np.log(probs[:, :1])
    return logits, [f"image log-odds {c}:{classes[0]}" for c in classes[1:]]


def _numeric(values: pd.Series, name: str) -> np.ndarray:
    """Return the covariate as floats (empty cells NaN); raise FusionError naming a bad value."""
    text = values.astype(str).str.strip().replace({"": np.nan, "nan": np.nan, "NA": np.nan})
    number = pd.to_numeric(text, errors="coerce")
    bad = number.isna() & text.notna()
    if bad.any():
        raise FusionError(f"covariate '{name}': '{text[bad].iloc[0]}' is not a number")
    return number.to_numpy(float)


def encode_covariates(
    table: pd.DataFrame, spec: dict[str, str], train: np.ndarray
) -> tuple[np.ndarray, list[str], int]:
    """Return (features, names, cells imputed) with every encoding fitted on the ``train`` rows.

    numeric / log: missing values get the training median, then the column is standardized by
    the training mean and SD (log: log(1 + x) first, for skewed lab values such as CA-125).
    category: one indicator column per training category but the most frequent one (the
    reference); missing or unseen values count as the reference category.
    """
    columns, names, imputed = [], [], 0
    for name, how in spec.items():
        if how not in ENCODINGS:
            raise FusionError(
                f"covariate '{name}': unknown encoding '{how}' ({', '.join(ENCODINGS)})"
            )
        if name not in table:
            raise FusionError(f"covariate '{name}' is not a column of the cases table")
        if how == "category":
            text = table[name].astype(str).str.strip().replace({"nan": ""})
            seen = text[train & (text != "").to_numpy()]
            if seen.empty:
                raise FusionError(f"covariate '{name}': no value among the training patients")
            counts = seen.value_counts()
            reference = counts.index[0]
            imputed += int((text == "").sum())
            for level in sorted(counts.index.drop(reference)):
                columns.append((text == level).to_numpy(float))
                names.append(f"{name}={level} (vs {reference})")
            continue
        x = _numeric(table[name], name)
        if how == "log":
            if np.nanmin(x, initial=0.0) < 0:
                raise FusionError(f"covariate '{name}': log encoding needs values >= 0")
            x = np.log1p(x)
        fill = np.nanmedian(x[train]) if np.isfinite(x[train]).any() else np.nan
        if np.isnan(fill):
            raise FusionError(f"covariate '{name}': no value among the training patients")
        imputed += int(np.isnan(x).sum())
        x = np.where(np.isnan(x), fill, x)
        sd = x[train].std() or 1.0
        columns.append((x - x[train].mean()) / sd)
        names.append(f"{name} ({how}, standardized)")
    return np.column_stack(columns) if columns else np.empty((len(table), 0)), names, imputed


def _fit(x: np.ndarray, y: np.ndarray, n_classes: int, c: float) -> LogisticRegression:
    """Return a logistic regression fitted on (x, y), checking that every class is present."""
    missing = sorted(set(range(n_classes)) - set(y.tolist()))
    if missing:
        raise FusionError(f"class indices {missing} absent from a training set: too few patients")
    return LogisticRegression(C=c, max_iter=2000).fit(x, y)


def _features(image, covariates, classes, spec, train, use_image, use_clinical):
    parts, names, imputed = [], [], 0
    if use_image:
        feats, labels = image_features(image, classes)
        parts.append(feats)
        names += labels
    if use_clinical:
        feats, labels, imputed = encode_covariates(covariates, spec, train)
        parts.append(feats)
        names += labels
    return np.column_stack(parts), names, imputed


def stacked_scores(
    image: pd.DataFrame,
    covariates: pd.DataFrame,
    classes: list[str],
    spec: dict[str, str],
    *,
    use_image: bool = True,
    use_clinical: bool = True,
    c: float = 1.0,
) -> tuple[pd.DataFrame, int]:
    """Return (out-of-fold patient scores of the stacked model, covariate cells imputed).

    ``image``: the image model's out-of-fold patient scores (patient, fold, label, p_<class>);
    ``covariates``: one row per patient key with the covariate columns of ``spec``.
    """
    table = image[["patient", "fold", "label", *prob_columns(classes)]].reset_index(drop=True)
    merged = table.merge(covariates, on="patient", how="left", validate="one_to_one")
    y = table["label"].map({k: i for i, k in enumerate(classes)}).to_numpy()
    out = np.zeros((len(table), len(classes)))
    imputed = 0
    for fold in sorted(table["fold"].unique()):
        test = (table["fold"] == fold).to_numpy()
        x, _, n_imp = _features(merged, merged, classes, spec, ~test, use_image, use_clinical)
        imputed = max(imputed, n_imp)  # every fold sees the same cells; count them once
        model = _fit(x[~test], y[~test], len(classes), c)
        out[test] = model.predict_proba(x[test])
    scored = table[["patient", "fold", "label"]].copy()
    scored[prob_columns(classes)] = out
    return scored, imputed


def coefficients(
    image: pd.DataFrame,
    covariates: pd.DataFrame,
    classes: list[str],
    spec: dict[str, str],
    c: float = 1.0,
) -> pd.DataFrame:
    """Return the image+clinical model's coefficients fitted on every patient (to read, not to
    evaluate): one row per (feature, class); features are standardized or log-odds."""
    merged = image.reset_index(drop=True).merge(covariates, on="patient", how="left")
    y = merged["label"].map({k: i for i, k in enumerate(classes)}).to_numpy()
    everyone = np.ones(len(merged), bool)
    x, names, _ = _features(merged, merged, classes, spec, everyone, True, True)
    model = _fit(x, y, len(classes), c)
    coef = model.coef_
    rows_for = [classes[1]] if coef.shape[0] == 1 else classes
    return pd.DataFrame(
        [
            {"feature": f, "class": k, "coefficient": coef[i, j]}
            for i, k in enumerate(rows_for)
            for j, f in enumerate(names)
        ]
    )


def fuse(
    scores_by_sequence: pd.DataFrame,
    covariates: pd.DataFrame,
    classes: list[str],
    cfg: dict,
    sequences: list[str],
    combine: str,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, dict]:
    """Return (scores per fused model, coefficients, info) for config ``fusion`` ``cfg``.

    The image model is the ensemble (``combine`` rule) of ``cfg['sequences']`` or of every
    sequence; the fused models are :data:`MODELS`, all scored on the patients that have image
    scores. ``info`` says which ensemble, how many patients and how many cells were imputed.
    """
    cfg = section("fusion", cfg)
    members = tuple(cfg["sequences"] or sequences)
    unknown = sorted(set(members) - set(sequences))
    if unknown:
        raise FusionError(f"fusion/sequences {unknown} are not among sequences/use {sequences}")
    image = combine_sequences(scores_by_sequence, members, classes, combine)
    missing = sorted(set(image["patient"]) - set(covariates["patient"]))
    if missing:
        raise FusionError(f"no covariates for {len(missing)} patients, e.g. {missing[0]}")
    spec = dict(cfg["covariates"])
    c = float(cfg["C"])
    out = {"image": image[["patient", "fold", "label", *prob_columns(classes)]]}
    imputed = 0
    for name, (use_image, use_clinical) in MODELS.items():
        if name == "image":
            continue
        out[name], n_imp = stacked_scores(
            image, covariates, classes, spec, use_image=use_image, use_clinical=use_clinical, c=c
        )
        imputed = max(imputed, n_imp)
    info = {
        "image_ensemble": ensemble_name(members),
        "patients": len(image),
        "imputed_cells": imputed,
    }
    log.info("fusion: %s", info)
    return out, coefficients(image, covariates, classes, spec, c), info


def fusion_tables(
    predictions: pd.DataFrame,
    folds: pd.DataFrame,
    covariates: pd.DataFrame,
    task: dict,
    sequences: list[str],
    evaluate: dict,
    cfg: dict,
) -> dict[str, pd.DataFrame]:
    """Return the fusion report tables from out-of-fold slice predictions and covariates.

    Keys: ``metrics`` (one row per model: binary metrics of the positive classes and the
    multi-class columns, with intervals when evaluate/bootstrap > 0), ``coefficients``, and
    ``classes``/``confusion``/``summaries`` as :func:`gynmri.evaluation.tables.class_tables` writes them,
    and ``scores``: every model's out-of-fold patient probabilities (column ``model``).
    """
    check_out_of_fold(predictions, folds)
    classes = task["classes"]
    scores = patient_scores(predictions, classes, evaluate["aggregate"])
    sets, coef, info = fuse(scores, covariates, classes, cfg, sequences, evaluate["combine"])
    opts = {"n_boot": evaluate["bootstrap"], "seed": evaluate["seed"]}
    rows = []
    for name, part in sets.items():
        uses = [what for what, on in zip(("image", "clinical"), MODELS[name], strict=True) if on]
        features = {
            "image": f"ensemble {info['image_ensemble']} (as is)",
            "clinical": ", ".join(cfg["covariates"]),
            "image+clinical": f"{info['image_ensemble']} log-odds + {', '.join(cfg['covariates'])}",
        }[name]
        rows.append(
            {
                "model": name,
                "features": features,
                "uses": "+".join(uses),
                "imputed_cells": info["imputed_cells"] if "clinical" in uses else 0,
                **pooled_metrics(
                    part,
                    task["positive"],
                    evaluate["threshold"],
                    classes=classes,
                    threshold_rule=evaluate["threshold_rule"],
                    **opts,
                ),
            }
        )
    tables = class_tables(
        sets,
        classes,
        task_summaries(task),
        evaluate["threshold"],
        kinds=dict.fromkeys(sets, "fusion"),
        **opts,
    )
    # each model's out-of-fold patient probabilities (decision curves, calibration)
    keep = ["patient", "fold", "label", *prob_columns(classes)]
    scores = pd.concat([part[keep].assign(model=name) for name, part in sets.items()])
    return {"metrics": pd.DataFrame(rows), "coefficients": coef, **tables, "scores": scores}
