"""Cross-validation jobs of the tumour-slice detector.

``train_detector``: the (sequence, fold) detector learns tumour vs no-tumour views from the
wide slices of the fold's training patients (see :mod:`gynmri.detection.views`).
``predict_auto``: the held-out patients of the fold get their slices selected by that detector,
cropped around the detected center, and classified by the fold's classifier, exactly as
``gynmri predict`` does for a new exam; the result has the format of the annotated predictions,
so the same evaluation applies.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.detection import views
from gynmri.detection.selector import select_and_crop
from gynmri.io.slices import read_wide, to_images, to_masks
from gynmri.training.crossval import fit_and_save, prediction_rows
from gynmri.training.folds import only_patients

log = logging.getLogger(__name__)


def _wide_of(paths: list[str], patients: list[str], sequence: str) -> pd.DataFrame:
    """Return the sequence's wide slices of exactly ``patients``, ordered by patient and slice."""
    wide = only_patients(read_wide(paths, sequence), patients, "wide tables")
    return wide.sort_values(["patient", "slice_index"], ignore_index=True)


def train_detector(
    wide_paths: list[str],
    train_patients: list[str],
    sequence: str,
    fold: int,
    size: int,
    model_cfg: dict,
    train_cfg: dict,
    detect_cfg: dict,
    out_model: Path,
    out_history: Path,
    checkpoint_dir: Path | None = None,
) -> None:
    """Train and save the (sequence, fold) detector on its training patients' views.

    ``train_cfg``: the detector's training settings (:func:`gynmri.config.detector_train_cfg`); ``detect_cfg``:
    config detect (tiles, min_fraction are used).
    """
    wide = _wide_of(wide_paths, train_patients, sequence)
    if wide.empty:
        raise ValueError(f"{sequence} fold {fold}: no wide slices (check results/qc/series.tsv)")
    tiles, min_fraction = int(detect_cfg["tiles"]), float(detect_cfg["min_fraction"])
    images, labels = views.training_set(
        to_images(wide), to_masks(wide), wide["annotated"].to_numpy(), size, tiles, min_fraction
    )
    log.info(
        "%s fold %d: detector views %d (%d tumour) from %d slices of %d patients",
        sequence,
        fold,
        len(labels),
        int(labels.sum()),
        len(wide),
        wide["patient"].nunique(),
    )
    meta = {
        "classes": views.DETECTOR_CLASSES,
        "sequence": sequence,
        "fold": fold,
        "size": size,
        "wide": int(wide["height"].iloc[0]),
        "tiles": tiles,
        "min_fraction": min_fraction,
        "role": "detector",
    }
    fit_and_save(
        images, labels, 2, model_cfg, train_cfg, meta, out_model, out_history, checkpoint_dir
    )


def _selection_rows(part: pd.DataFrame, fold: int, selection) -> pd.DataFrame:
    """Return one patient's slice selection: per slice score, selected, annotated; the error of
    the detected tumour center against the annotation's (pixels; NaN without annotation)."""
    annotated = part["annotated"].to_numpy()
    true_center = (
        np.argwhere(to_masks(part)[annotated]).mean(axis=0)[1:]
        if annotated.any()
        else np.full(2, np.nan)
    )
    return pd.DataFrame(
        {
            "patient": part["patient"].iloc[0],
            "sequence": part["sequence"].iloc[0],
            "fold": fold,
            "slice_index": part["slice_index"].to_numpy(),
            "score": selection.scores,
            "selected": np.isin(np.arange(len(part)), selection.chosen),
            "annotated": annotated,
            "center_error_px": float(np.linalg.norm(selection.center - true_center)),
        }
    )


def predict_auto(
    detector_dir: Path,
    model_dir: Path,
    wide_paths: list[str],
    test_patients: list[str],
    sequence: str,
    fold: int,
    classes: list[str],
    threshold: float,
    out_predictions: Path,
    out_selection: Path,
) -> pd.DataFrame:
    """Write the held-out patients' predictions with automatically selected slices, and the
    slice selection itself (per slice: score, selected, annotated; per patient: center error).
    ``threshold``: config detect/threshold."""
    from gynmri.training.step import predict_proba
    from gynmri.training.weights import load_checked, load_model

    detector, dmeta = load_model(Path(detector_dir))
    model, _ = load_checked(Path(model_dir), classes)
    size, tiles = int(dmeta["size"]), int(dmeta["tiles"])
    predictions, selections = [], []
    for _, part in _wide_of(wide_paths, test_patients, sequence).groupby("patient", sort=True):
        selection = select_and_crop([detector], to_images(part), size, tiles, float(threshold))
        chosen = part.iloc[selection.chosen]
        predictions.append(
            prediction_rows(chosen, fold, classes, predict_proba(model, selection.crops))
        )
        selections.append(_selection_rows(part, fold, selection))
    out = (
        pd.concat(predictions, ignore_index=True)
        if predictions
        else prediction_rows(
            pd.DataFrame(columns=["patient", "sequence", "label", "slice_index"]),
            fold,
            classes,
            np.zeros((0, len(classes))),
        )
    )
    out.to_parquet(out_predictions, index=False)
    sel = pd.concat(selections, ignore_index=True) if selections else pd.DataFrame()
    sel.to_parquet(out_selection, index=False)
    log.info(
        "%s fold %d: %d patients, %d slices selected automatically",
        sequence,
        fold,
        out["patient"].nunique(),
        len(out),
    )
    return out
