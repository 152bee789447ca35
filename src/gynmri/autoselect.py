"""Cross-validation jobs of the tumour-slice detector, and automatic slice selection.

``train_detector``: the (sequence, fold) detector learns tumour vs no-tumour tiles from the
wide slices of the fold's training patients (see gynmri.detect). ``predict_auto``: the held-out
patients of the fold get their slices selected by that detector, cropped around the detected
centre, and classified by the fold's classifier, exactly as ``gynmri predict`` does for a new
exam; the result has the format of the annotated predictions, so the same evaluation applies.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from gynmri import detect
from gynmri.evaluate import prob_columns
from gynmri.folds import LeakageError
from gynmri.slices import read_wide, to_images, to_masks

log = logging.getLogger(__name__)


def _wide_of(paths: list[str], patients: list[str], sequence: str) -> pd.DataFrame:
    """Return the sequence's wide slices of exactly ``patients``, refusing any other patient."""
    wide = read_wide(paths, sequence)
    foreign = set(wide["patient"]) - set(patients)
    if foreign:
        raise LeakageError(f"wide tables of patients outside this set: {sorted(foreign)}")
    return wide.sort_values(["patient", "slice_index"], ignore_index=True)


def detector_train_cfg(train_cfg: dict, detect_cfg: dict) -> dict:
    """Return the training settings of the detector: the classifier's, with detect overrides."""
    cfg = dict(train_cfg)
    for key in ("epochs", "images_per_epoch"):
        if detect_cfg.get(key):
            cfg[key] = detect_cfg[key]
    cfg.pop("images_per_class", None)  # the pool size is the classifier's protocol
    return cfg


def train_detector(wide_paths: list[str], train_patients: list[str], sequence: str, fold: int,
                   size: int, model_cfg: dict, train_cfg: dict, detect_cfg: dict,
                   out_model: Path, out_history: Path,
                   checkpoint_dir: Path | None = None) -> None:  # fmt: skip
    """Train and save the (sequence, fold) detector on its training patients' tiles."""
    from gynmri.train import fit, save_model

    wide = _wide_of(wide_paths, train_patients, sequence)
    if wide.empty:
        raise ValueError(f"{sequence} fold {fold}: no wide slices (check results/qc/series.tsv)")
    tiles, min_fraction = int(detect_cfg["tiles"]), float(detect_cfg["min_fraction"])
    images, labels = detect.training_set(
        to_images(wide), to_masks(wide), wide["annotated"].to_numpy(), size, tiles, min_fraction
    )
    log.info("%s fold %d: detector tiles %d (%d tumour) from %d slices of %d patients", sequence,
             fold, len(labels), int(labels.sum()), len(wide), wide["patient"].nunique())  # fmt: skip
    kwargs = {"checkpoint_dir": checkpoint_dir} if checkpoint_dir else {}
    model, history = fit(images, labels, 2, model_cfg, detector_train_cfg(train_cfg, detect_cfg),
                         log=log.info, **kwargs)  # fmt: skip
    meta = {"classes": detect.DETECTOR_CLASSES, "sequence": sequence, "fold": fold, "size": size,
            "wide": int(wide["height"].iloc[0]), "tiles": tiles, "min_fraction": min_fraction,
            "role": "detector"}  # fmt: skip
    save_model(model, Path(out_model), meta)
    history.to_csv(out_history, sep="\t", index=False)
    if checkpoint_dir:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)


def detect_and_crop(detector, images: np.ndarray, size: int, tiles: int,
                    threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Return (per-slice tumour probabilities, selected slice indices, centre (row, col), crops)
    of one series (see gynmri.detect). ``detector``: a model or a list whose outputs are averaged.
    """
    from gynmri.train import predict_proba

    detectors = detector if isinstance(detector, list) else [detector]

    def tumour_probability(views: np.ndarray) -> np.ndarray:
        return np.mean([predict_proba(d, views)[:, 1] for d in detectors], axis=0)

    scores = tumour_probability(detect.overview(images, size))
    chosen = detect.select_slices(scores, threshold)
    windows = detect.tiles_of(images[chosen], size, tiles).reshape(-1, size, size)
    tile_scores = tumour_probability(windows).reshape(len(chosen), tiles, tiles)
    centre = detect.tumour_centre(tile_scores, images.shape[-1], size)
    return scores, chosen, centre, detect.crop_at(images[chosen], centre, size)


def predict_auto(detector_dir: Path, model_dir: Path, wide_paths: list[str],
                 test_patients: list[str], sequence: str, fold: int, classes: list[str],
                 detect_cfg: dict, out_predictions: Path,
                 out_selection: Path) -> pd.DataFrame:  # fmt: skip
    """Write the held-out patients' predictions with automatically selected slices, and the
    slice selection itself (per slice: score, selected, annotated; per patient: centre error)."""
    from gynmri.train import load_model, predict_proba

    detector, dmeta = load_model(Path(detector_dir))
    model, meta = load_model(Path(model_dir))
    if meta.get("classes") != list(classes):
        raise ValueError(f"model {model_dir} was trained for classes {meta.get('classes')}")
    size, tiles = int(dmeta["size"]), int(dmeta["tiles"])
    wide = _wide_of(wide_paths, test_patients, sequence)
    predictions, selection = [], []
    for patient, part in wide.groupby("patient", sort=True):
        images = to_images(part)
        scores, chosen, centre, crops = detect_and_crop(
            detector, images, size, tiles, float(detect_cfg["threshold"])
        )
        masks = to_masks(part)
        true_centre = np.argwhere(masks[part["annotated"].to_numpy()]).mean(axis=0)[1:] \
            if part["annotated"].any() else np.full(2, np.nan)  # fmt: skip
        probs = predict_proba(model, crops)
        rows = part.iloc[chosen][["patient", "sequence", "label", "slice_index"]].reset_index(
            drop=True
        )
        rows.insert(2, "fold", fold)
        rows[prob_columns(classes)] = probs
        predictions.append(rows)
        selection.append(pd.DataFrame({
            "patient": patient, "sequence": sequence, "fold": fold,
            "slice_index": part["slice_index"].to_numpy(), "score": scores,
            "selected": np.isin(np.arange(len(part)), chosen),
            "annotated": part["annotated"].to_numpy(),
            "centre_error_px": float(np.linalg.norm(centre - true_centre)),
        }))  # fmt: skip
    columns = ["patient", "sequence", "fold", "label", "slice_index", *prob_columns(classes)]
    out = (
        pd.concat(predictions, ignore_index=True) if predictions else pd.DataFrame(columns=columns)
    )
    out.to_parquet(out_predictions, index=False)
    sel = pd.concat(selection, ignore_index=True) if selection else pd.DataFrame()
    sel.to_parquet(out_selection, index=False)
    log.info("%s fold %d: %d patients, %d slices selected automatically", sequence, fold,
             out["patient"].nunique() if len(out) else 0, len(out))  # fmt: skip
    return out


def selection_tables(auto: pd.DataFrame, annotated: pd.DataFrame, selection: pd.DataFrame,
                     ensembles: pd.DataFrame, task: dict, sequences: list[str], evaluate: dict,
                     mm_per_px: float) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Return (slice-level table, patient-level table) of automatic vs annotated selection.

    Slice level, per sequence (pooled over held-out patients): sensitivity, specificity and
    Jaccard of the selected vs annotated slices, the share of patients whose selection hits at
    least one annotated slice, and the median error of the detected tumour centre in mm.
    Patient level: the diagnosis metrics of each sequence and of the best ensemble (first row
    of ``ensembles`` with more than one sequence, else the first row), once with the annotated
    slices and once with the automatic ones.
    """
    from gynmri.evaluate import combine_sequences, patient_scores, pooled_metrics

    rows = []
    for sequence, part in selection.groupby("sequence", sort=False):
        per_patient = part.groupby("patient")
        hit = per_patient.apply(lambda g: bool((g["selected"] & g["annotated"]).any()),
                                include_groups=False)  # fmt: skip
        jaccard = per_patient.apply(
            lambda g: detect.slice_metrics(g["annotated"], g["selected"])["jaccard"],
            include_groups=False,
        )
        errors = per_patient["centre_error_px"].first() * mm_per_px
        rows.append({
            "sequence": sequence, "patients": part["patient"].nunique(),
            **detect.slice_metrics(part["annotated"], part["selected"]),
            "patients_hit": float(hit.mean()), "jaccard_per_patient": float(jaccard.mean()),
            "centre_error_mm_median": float(errors.median()),
        })  # fmt: skip
    slices = pd.DataFrame(rows)
    classes, positive = task["classes"], task["positive"]
    multi = ensembles[ensembles["n_sequences"] > 1]
    best = str((multi if len(multi) else ensembles)["ensemble"].iloc[0])
    out = []
    for name, preds in (("annotated", annotated), ("automatic", auto)):
        scores = patient_scores(preds, classes, evaluate["aggregate"])
        sets = {s: scores[scores["sequence"] == s] for s in sequences}
        sets[best] = combine_sequences(scores, tuple(best.split("+")), classes, evaluate["combine"])
        for scores_name, part in sets.items():
            out.append({"scores": scores_name, "selection": name,
                        **pooled_metrics(part, positive, evaluate["threshold"], classes=classes)})  # fmt: skip
    return slices, pd.DataFrame(out)
