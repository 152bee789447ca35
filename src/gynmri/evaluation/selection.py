"""Automatic vs annotated slice selection: slice-level detection, patient-level diagnosis."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gynmri.evaluation.confusion import counts, jaccard, rates
from gynmri.evaluation.metrics import pooled_metrics
from gynmri.evaluation.scoring import (
    best_ensemble,
    combine_sequences,
    ensemble_name,
    patient_scores,
)


def slice_metrics(truth: np.ndarray, selected: np.ndarray) -> dict:
    """Return slice-level sensitivity, specificity and Jaccard overlap of selected vs true slices."""
    c = counts(truth, selected)
    r = rates(c)
    return {
        "slices": len(np.asarray(truth)),
        "tumour_slices": c["tp"] + c["fn"],
        "selected": c["tp"] + c["fp"],
        "sensitivity": r["sensitivity"],
        "specificity": r["specificity"],
        "jaccard": jaccard(c),
    }


def slice_table(selection: pd.DataFrame, mm_per_px: float) -> pd.DataFrame:
    """Return per sequence (pooled over held-out patients): sensitivity, specificity and Jaccard
    of the selected vs annotated slices, the share of patients whose selection hits at least one
    annotated slice, the mean per-patient Jaccard, the median tumour-center error in mm, and the
    localiser's segmentation quality: mean Dice and median HD95 (mm) of the kept tumour."""
    rows = []
    for sequence, part in selection.groupby("sequence", sort=False):
        per_patient = part.groupby("patient")
        hit = per_patient.apply(
            lambda g: bool((g["selected"] & g["annotated"]).any()), include_groups=False
        )
        jaccard = per_patient.apply(
            lambda g: slice_metrics(g["annotated"], g["selected"])["jaccard"],
            include_groups=False,
        )
        errors = per_patient["center_error_px"].first() * mm_per_px
        rows.append(
            {
                "sequence": sequence,
                "patients": part["patient"].nunique(),
                **slice_metrics(part["annotated"], part["selected"]),
                "patients_hit": float(hit.mean()),
                "jaccard_per_patient": float(jaccard.mean()),
                "center_error_mm_median": float(errors.median()),
                # the localiser's kept 3-D tumour against the annotation, per patient
                **{
                    name: float(how(per_patient[column].first())) if column in part else np.nan
                    for name, column, how in (
                        ("dice_mean", "dice", pd.Series.mean),
                        ("hd95_mm_median", "hd95_mm", pd.Series.median),
                    )
                },
            }
        )
    return pd.DataFrame(rows)


def selection_tables(
    auto: pd.DataFrame,
    annotated: pd.DataFrame,
    selection: pd.DataFrame,
    ensembles: pd.DataFrame,
    task: dict,
    sequences: list[str],
    evaluate: dict,
    mm_per_px: float,
    perfect: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (slice-level table, patient-level table) of automatic vs annotated selection.

    Slice level: :func:`slice_table`. Patient level: the diagnosis metrics of each sequence and
    of the best ensemble, once with the annotated slices, once (with ``perfect``) with the
    annotated slices taken as the automatic path takes its own (from the wide slices, cropped
    around the annotation's centroid: a perfect localiser) and once with the automatic ones.
    Annotated vs perfect is what the wide grid's resampling costs the classifier; perfect vs
    automatic is what the localiser's errors cost.
    """
    classes, positive = task["classes"], task["positive"]
    best = best_ensemble(ensembles)
    out = []
    sets = [("annotated", annotated), ("perfect_localiser", perfect), ("automatic", auto)]
    for name, preds in [(n, p) for n, p in sets if p is not None]:
        scores = patient_scores(preds, classes, evaluate["aggregate"])
        sets = {s: scores[scores["sequence"] == s] for s in sequences}
        sets[ensemble_name(best)] = combine_sequences(scores, best, classes, evaluate["combine"])
        for scores_name, part in sets.items():
            metrics = pooled_metrics(part, positive, evaluate["threshold"], classes=classes)
            out.append({"scores": scores_name, "selection": name, **metrics})
    return slice_table(selection, mm_per_px), pd.DataFrame(out)
