"""Cross-validation jobs of the tumour localiser (the workflow's detector rules).

``train_localiser``: the (sequence, fold) segmentation network learns the tumour masks of the
fold's training patients' wide slices; the slice-area threshold that selects tumour slices is
then chosen on those same patients (never on the held-out fold) and saved with the network.
``predict_auto``: the held-out patients get their slices selected and cropped around the
predicted tumour's centroid by that localiser and classified by the fold's classifier, as
``gynmri predict`` does for a new exam; the predictions have the format of the annotated ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.io.slices import read_wide, to_images, to_masks
from gynmri.localise import metrics
from gynmri.localise.locate import Localisation, choose_area_threshold, crop_at, locate
from gynmri.training.crossval import prediction_rows
from gynmri.training.folds import only_patients

log = logging.getLogger(__name__)


def wide_of(paths: list[str], patients: list[str], sequence: str) -> pd.DataFrame:
    """Return the sequence's wide slices of exactly ``patients``, ordered by patient and slice."""
    wide = only_patients(read_wide(paths, sequence), patients, "wide tables")
    return wide.sort_values(["patient", "slice_index"], ignore_index=True)


def by_patient(wide: pd.DataFrame):
    """Yield each patient's wide slices (ordered along the normal)."""
    for _, part in wide.groupby("patient", sort=True):
        yield part


def fit_and_calibrate(wide: pd.DataFrame, cfg: dict, augment: dict, log=print):
    """Return (network, history, slice-area threshold) trained and chosen on ``wide``'s patients
    (their masks; the threshold against their annotated slices)."""
    from gynmri.localise.train import fit_localiser, predict_maps

    net, history = fit_localiser(to_images(wide), to_masks(wide), cfg, augment, log=log)
    parts = list(by_patient(wide))
    areas = [locate(predict_maps(net, to_images(p)), 0.0).area_px for p in parts]
    threshold = choose_area_threshold(areas, [p["annotated"].to_numpy() for p in parts])
    return net, history, threshold


def train_localiser(
    wide_paths: list[str],
    train_patients: list[str],
    sequence: str,
    fold: int,
    size: int,
    cfg: dict,
    augment: dict,
    out_model: Path,
    out_history: Path,
) -> None:
    """Train, calibrate (area threshold) and save the (sequence, fold) localiser.

    ``cfg``: the localiser's settings (:func:`gynmri.config.localiser_cfg`); ``augment``: config
    train/augment; ``size``: the classifier's slice size (the crop taken around the tumour).
    """
    from gynmri.localise.store import save_localiser

    wide = wide_of(wide_paths, train_patients, sequence)
    if wide.empty:
        raise ValueError(f"{sequence} fold {fold}: no wide slices (check results/qc/series.tsv)")
    masks = to_masks(wide)
    log.info(
        "%s fold %d: localiser on %d slices (%d with tumour) of %d patients, %s",
        sequence, fold, len(wide), int(masks.any(axis=(1, 2)).sum()), wide["patient"].nunique(),
        cfg["network"],
    )  # fmt: skip
    net, history, threshold = fit_and_calibrate(wide, cfg, augment, log.info)
    log.info("%s fold %d: slices selected from %g tumour pixels on", sequence, fold, threshold)
    meta = {
        "sequence": sequence,
        "fold": fold,
        "size": size,
        "wide": int(wide["height"].iloc[0]),
        "area_threshold_px": threshold,
    }
    save_localiser(net, out_model, cfg, meta)
    history.to_csv(out_history, sep="\t", index=False, float_format="%.5f")


def selection_rows(
    part: pd.DataFrame, fold: int, loc: Localisation, mm_per_px: float
) -> pd.DataFrame:
    """Return one patient's slice selection: per slice predicted tumour area, selected,
    annotated; per patient the centre error (wide pixels), Dice and HD95 of the kept tumour
    against the annotation (NaN without annotation)."""
    annotated = part["annotated"].to_numpy()
    true = to_masks(part)
    center_px = (
        metrics.center_error_mm(loc.center, true[annotated], 1.0) if annotated.any() else np.nan
    )
    return pd.DataFrame(
        {
            "patient": part["patient"].iloc[0],
            "sequence": part["sequence"].iloc[0],
            "fold": fold,
            "slice_index": part["slice_index"].to_numpy(),
            "score": loc.area_px.astype(float),
            "selected": loc.chosen_mask,
            "annotated": annotated,
            "center_error_px": center_px,
            "dice": metrics.dice(loc.mask, true),
            "hd95_mm": metrics.hd95(loc.mask, true, (1.0, mm_per_px, mm_per_px)),
        }
    )


@dataclass(frozen=True)
class Selection:
    """One series localised: where the tumour is, the slices chosen and their crops."""

    localisation: Localisation
    crops: np.ndarray  # the chosen slices cropped around the tumour's centroid (n, size, size)

    @property
    def chosen(self) -> np.ndarray:
        return self.localisation.chosen

    @property
    def center(self) -> np.ndarray:
        return self.localisation.center


def localise_series(localisers: list, images: np.ndarray, size: int) -> Selection:
    """Return the :class:`Selection` of one series' wide slices (S, W, W) by one or more
    localisers ((network, meta) pairs: probabilities and area thresholds averaged)."""
    from gynmri.localise.train import predict_maps

    maps = np.mean([predict_maps(net, images) for net, _ in localisers], axis=0)
    threshold = float(np.mean([m["area_threshold_px"] for _, m in localisers]))
    loc = locate(maps, threshold)
    return Selection(loc, crop_at(images[loc.chosen], loc.center, size))


def predict_auto(
    localiser_dir: Path,
    model_dir: Path,
    wide_paths: list[str],
    test_patients: list[str],
    sequence: str,
    fold: int,
    classes: list[str],
    mm_per_px: float,
    out_predictions: Path,
    out_selection: Path,
    out_masks: Path | None = None,
) -> pd.DataFrame:
    """Write the held-out patients' predictions with automatically selected slices, the
    selection itself (see :func:`selection_rows`) and, to ``out_masks`` (npz, one (S, W, W)
    bool array per patient key), the tumour each patient's localisation kept, for the report."""
    from gynmri.localise.store import load_localiser
    from gynmri.training.step import predict_proba
    from gynmri.training.weights import load_checked

    localiser = load_localiser(Path(localiser_dir))
    model, _ = load_checked(Path(model_dir), classes)
    size = int(localiser[1]["size"])
    predictions, selections, masks = [], [], {}
    for part in by_patient(wide_of(wide_paths, test_patients, sequence)):
        selection = localise_series([localiser], to_images(part), size)
        masks[str(part["patient"].iloc[0])] = selection.localisation.mask
        chosen = part.iloc[selection.chosen]
        probabilities = predict_proba(model, selection.crops)
        predictions.append(prediction_rows(chosen, fold, classes, probabilities))
        selections.append(selection_rows(part, fold, selection.localisation, mm_per_px))
    if predictions:
        out = pd.concat(predictions, ignore_index=True)
    else:
        empty = pd.DataFrame(columns=["patient", "sequence", "label", "slice_index"])
        out = prediction_rows(empty, fold, classes, np.zeros((0, len(classes))))
    out.to_parquet(out_predictions, index=False)
    sel = pd.concat(selections, ignore_index=True) if selections else pd.DataFrame()
    sel.to_parquet(out_selection, index=False)
    if out_masks is not None:
        with open(out_masks, "wb") as f:  # a file object: savez would append ".npz" to a path
            np.savez_compressed(f, **masks)
    log.info(
        "%s fold %d: %d patients, %d slices selected automatically",
        sequence, fold, out["patient"].nunique(), len(out),
    )  # fmt: skip
    return out
