"""Cross-validation jobs of the tumour localiser (the workflow's detector rules).

``train_localiser``: the (sequence, fold) segmentation network learns the tumour masks of the
fold's training patients' wide slices; the slice-area threshold that selects tumour slices is
then chosen on those same patients (never on the held-out fold) and saved with the network.
``calibrate_carried``: a sequence read by the guide's localiser (config ``detect.guide``) trains
no network; its slice-area threshold is chosen on the training patients' guide tumour carried
onto its slices (:mod:`gynmri.localise.carry`).
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
from gynmri.localise.carry import carry, grid_of
from gynmri.localise.locate import Localisation, centroid, choose_area_threshold, crop_at, locate
from gynmri.training.crossval import prediction_rows
from gynmri.training.folds import only_patients

log = logging.getLogger(__name__)


def wide_of(paths: list[str], patients: list[str], sequence: str | None) -> pd.DataFrame:
    """Return the sequence's (None: every sequence's) wide slices of exactly ``patients``,
    ordered by patient and slice."""
    wide = only_patients(read_wide(paths, sequence), patients, "wide tables")
    return wide.sort_values(["patient", "slice_index"], ignore_index=True)


def by_patient(wide: pd.DataFrame):
    """Yield each patient's wide slices (ordered along the normal)."""
    for _, part in wide.groupby("patient", sort=True):
        yield part


def fit_and_calibrate(wide: pd.DataFrame, cfg: dict, augment: dict, log=print):
    """Return (network, history, slice-area threshold, tumour probabilities by patient key)
    trained and chosen on ``wide``'s patients (their masks; the threshold against their
    annotated slices)."""
    from gynmri.localise.train import fit_localiser, predict_maps

    net, history = fit_localiser(to_images(wide), to_masks(wide), cfg, augment, log=log)
    parts = list(by_patient(wide))
    maps = {str(p["patient"].iloc[0]): predict_maps(net, to_images(p)) for p in parts}
    areas = [locate(maps[str(p["patient"].iloc[0])], 0.0).area_px for p in parts]
    threshold = choose_area_threshold(areas, [p["annotated"].to_numpy() for p in parts])
    return net, history, threshold, maps


def tumour_maps(localisers: list, images: np.ndarray) -> np.ndarray:
    """Return the tumour probabilities (S, H, W) of slices (S, H, W): the mean over one or more
    localisers ((network, meta) pairs, e.g. every fold's in ``gynmri predict``)."""
    from gynmri.localise.train import predict_maps

    return np.mean([predict_maps(net, images) for net, _ in localisers], axis=0)


def carried_maps(guide_localisers: list, guide: pd.DataFrame, target: pd.DataFrame) -> np.ndarray:
    """Return the tumour probabilities of the guide series' wide rows (``guide``, one patient)
    carried onto the slices of another series of that patient (``target``'s wide rows)."""
    maps = tumour_maps(guide_localisers, to_images(guide))
    return carry(maps, grid_of(guide), grid_of(target))


def write_maps(path: Path, maps: dict[str, np.ndarray]) -> None:
    """Save tumour probabilities by patient key, in 1/255 steps: the background rounds to 0 and
    compresses away (float16 barely compressed: ~1 GB for the paper's 6 folds)."""
    with open(path, "wb") as f:  # a file object: savez would append ".npz" to a path
        np.savez_compressed(f, **{k: np.round(v * 255).astype(np.uint8) for k, v in maps.items()})


def read_maps(path: Path) -> dict[str, np.ndarray]:
    """Return the tumour probabilities by patient key that :func:`write_maps` saved."""
    with np.load(path) as saved:
        return {key: saved[key].astype(np.float32) / 255 for key in saved.files}


def guide_parts(wide: pd.DataFrame, guide: str) -> dict[str, pd.DataFrame]:
    """Return each patient's wide rows of the guide sequence, by patient key."""
    return {str(p["patient"].iloc[0]): p for p in by_patient(wide[wide["sequence"] == guide])}


def calibrate_carried(
    wide_paths: list[str],
    train_patients: list[str],
    sequence: str,
    fold: int,
    guide_dir: Path,
    guide_maps: Path,
    out_model: Path,
) -> None:
    """Choose and save the slice-area threshold of a sequence read where the guide's (sequence,
    fold) localiser finds the tumour, on the fold's training patients that have both series:
    the tumour probabilities its training job saved (``guide_maps``), carried onto their
    slices (no network runs here)."""
    from gynmri.localise.store import load_meta, save_carried

    guide = load_meta(Path(guide_dir))
    maps = read_maps(Path(guide_maps))
    wide = only_patients(read_wide(wide_paths), train_patients, "wide tables")
    guides = guide_parts(wide, guide["sequence"])
    parts = [
        p for p in by_patient(wide[wide["sequence"] == sequence]) if p["patient"].iloc[0] in guides
    ]
    if not parts:
        raise ValueError(
            f"{sequence} fold {fold}: no training patient has both this series and the guide's "
            f"({guide['sequence']}): check results/qc/series.tsv"
        )
    areas = []
    for part in parts:
        source = guides[part["patient"].iloc[0]]
        carried = carry(maps[source["patient"].iloc[0]], grid_of(source), grid_of(part))
        areas.append(locate(carried, 0.0).area_px)
    threshold = choose_area_threshold(areas, [p["annotated"].to_numpy() for p in parts])
    log.info(
        "%s fold %d: read where the %s localiser finds the tumour (%d of %d training patients "
        "have both series); slices selected from %g carried tumour pixels on",
        sequence, fold, guide["sequence"], len(parts),
        wide.loc[wide["sequence"] == sequence, "patient"].nunique(), threshold,
    )  # fmt: skip
    save_carried(
        out_model,
        {
            "size": guide["size"],
            "wide": guide["wide"],
            "sequence": sequence,
            "fold": fold,
            "guide": guide["sequence"],
            "area_threshold_px": threshold,
        },
    )


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
    out_maps: Path | None = None,
) -> None:
    """Train, calibrate (area threshold) and save the (sequence, fold) localiser.

    ``cfg``: the localiser's settings (:func:`gynmri.config.localiser_cfg`); ``augment``: config
    train/augment; ``size``: the classifier's slice size (the crop taken around the tumour).
    ``out_maps``: the training patients' tumour probabilities (:func:`write_maps`),
    from which the carried sequences choose their thresholds (:func:`calibrate_carried`).
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
    net, history, threshold, maps = fit_and_calibrate(wide, cfg, augment, log.info)
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
    if out_maps is not None:
        write_maps(out_maps, maps)


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


def select(maps: np.ndarray, images: np.ndarray, threshold: float, size: int) -> Selection:
    """Return the :class:`Selection` of one series' wide slices (S, W, W) given its tumour
    probabilities (:func:`tumour_maps` or :func:`carried_maps`) and slice-area threshold."""
    loc = locate(maps, threshold)
    return Selection(loc, crop_at(images[loc.chosen], loc.center, size))


def perfect_crops(part: pd.DataFrame, size: int) -> np.ndarray:
    """Return one patient's annotated wide slices cropped around the annotation's centroid:
    what the automatic path would classify with a localiser that found the annotation exactly
    (the reference that separates the localiser's errors from the wide grid's resampling)."""
    annotated = part["annotated"].to_numpy()
    return crop_at(to_images(part)[annotated], centroid(to_masks(part)[annotated]), size)


def _series_maps(localiser, guide, guides: dict, part: pd.DataFrame) -> np.ndarray:
    """Return the tumour probabilities of one patient's series: its own localiser's, or the
    guide's carried onto it; zeros (no tumour found) when the patient lacks the guide series."""
    if guide is None:
        return tumour_maps([localiser], to_images(part))
    source = guides.get(str(part["patient"].iloc[0]))
    if source is None:
        log.warning("a held-out patient has no %s series: no tumour found", guide[1]["sequence"])
        shape = (len(part), int(part["height"].iloc[0]), int(part["width"].iloc[0]))
        return np.zeros(shape, np.float32)
    return carried_maps([guide], source, part)


def _predictions_table(frames: list[pd.DataFrame], fold: int, classes: list[str]) -> pd.DataFrame:
    """Return the concatenated prediction rows, or an empty table of their columns."""
    if frames:
        return pd.concat(frames, ignore_index=True)
    empty = pd.DataFrame(columns=["patient", "sequence", "label", "slice_index"])
    return prediction_rows(empty, fold, classes, np.zeros((0, len(classes))))


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
    guide_dir: Path | None = None,
    out_perfect: Path | None = None,
    tta: dict | None = None,
) -> pd.DataFrame:
    """Write the held-out patients' predictions with automatically selected slices, the
    selection itself (see :func:`selection_rows`) and, to ``out_masks`` (npz, one (S, W, W)
    bool array per patient key), the tumour each patient's localisation kept, for the report.
    ``guide_dir``: the guide's (sequence, fold) localiser, for a sequence carried from it.
    ``out_perfect``: the predictions of :func:`perfect_crops`, in the same format. ``tta``: see
    :func:`gynmri.training.step.predict_proba`."""
    from gynmri.localise.store import load_localiser, load_meta
    from gynmri.training.step import predict_proba
    from gynmri.training.weights import load_checked

    meta = load_meta(Path(localiser_dir))
    localiser = None if meta["role"] == "carried" else load_localiser(Path(localiser_dir))
    guide = load_localiser(Path(guide_dir)) if meta["role"] == "carried" else None
    # one read of the test patients' tables: this sequence's rows and the guide's
    wide = wide_of(wide_paths, test_patients, None if guide else sequence)
    guides = guide_parts(wide, meta["guide"]) if guide is not None else {}
    model, _ = load_checked(Path(model_dir), classes)
    size, threshold = int(meta["size"]), float(meta["area_threshold_px"])
    predictions, selections, masks, perfect = [], [], {}, []
    for part in by_patient(wide[wide["sequence"] == sequence]):
        if part["annotated"].any():
            crops = perfect_crops(part, size)
            rows = prediction_rows(
                part[part["annotated"]], fold, classes, predict_proba(model, crops, tta=tta)
            )
            perfect.append(rows)
        maps = _series_maps(localiser, guide, guides, part)
        selection = select(maps, to_images(part), threshold, size)
        masks[str(part["patient"].iloc[0])] = selection.localisation.mask
        chosen = part.iloc[selection.chosen]
        probabilities = predict_proba(model, selection.crops, tta=tta)
        predictions.append(prediction_rows(chosen, fold, classes, probabilities))
        selections.append(selection_rows(part, fold, selection.localisation, mm_per_px))
    out = _predictions_table(predictions, fold, classes)
    out.to_parquet(out_predictions, index=False)
    if out_perfect is not None:
        _predictions_table(perfect, fold, classes).to_parquet(out_perfect, index=False)
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
