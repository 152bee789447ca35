"""Class-activation maps of held-out patients scored against their tumour (explanations.tsv).

Each patient of a fold's test set is seen as the classifier sees it: its middle annotated slice
(among those whose mask survived resampling), cropped from the wide slice (the classifier's pixel
size, with the mask) around the centroid of the patient's annotation. The fold's model, which
never trained on the patient, classifies the crop and every method of
:mod:`gynmri.inference.cams` explains the class it calls. Scores, over the correctly classified
patients, per sequence and method: the pointing-game hit rate, the mean share of the map's
energy inside the tumour, and for scale the tumour's share of the crop (a map that ignores the
image scores that share; one whose peak is everywhere scores nothing in the pointing game).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.inference.cams import METHODS, class_maps, energy_in_mask, is_flat, pointing_hit
from gynmri.io.slices import listed_tables, read_wide, to_images, to_masks
from gynmri.localise.locate import crop_at

#: The summary's columns (explanations.tsv), one row per sequence and method.
SUMMARY_COLUMNS = [
    "sequence",
    "method",
    "patients",
    "patients_total",
    "pointing_hit_rate",
    "energy_in_tumour",
    "tumour_share",
    "flat_maps",
]


@dataclass
class Views:
    """One crop per patient (the classifier's input) and the tumour mask on the same grid."""

    patients: list[str]
    labels: np.ndarray  # (P,) class index
    images: np.ndarray  # (P, size, size)
    masks: np.ndarray  # (P, size, size) bool


def tumour_views(wide: pd.DataFrame, size: int) -> Views:
    """Return the :class:`Views` of the patients of a wide table (one sequence) that have an
    annotated slice with tumour pixels."""
    patients, labels, images, masks = [], [], [], []
    for patient, part in wide.sort_values("slice_index").groupby("patient", sort=True):
        annotated = part[part["annotated"]]
        if annotated.empty:
            continue
        mask = to_masks(annotated)
        keep = mask.any(axis=(1, 2))
        if not keep.any():
            continue
        annotated, mask = annotated[keep], mask[keep]
        center = np.argwhere(mask).mean(axis=0)[1:]  # in-plane centroid of the whole tumour
        k = len(annotated) // 2
        patients.append(str(patient))
        labels.append(int(annotated["label_index"].iloc[0]))
        images.append(crop_at(to_images(annotated.iloc[[k]]), center, size)[0])
        masks.append(crop_at(mask[[k]], center, size)[0])
    if not patients:
        return Views([], np.zeros(0, int), np.zeros((0, size, size)), np.zeros((0, size, size)))
    return Views(patients, np.array(labels), np.stack(images), np.stack(masks))


@dataclass
class FoldMaps:
    """The views of one (sequence, fold), the class the fold's model calls and every map."""

    sequence: str
    fold: int
    views: Views
    called: np.ndarray  # (P,) class index
    maps: dict[str, np.ndarray]  # method -> (P, size, size) in [0, 1]


def explain_fold(
    model, views: Views, sequence: str, fold: int, methods: Iterable[str] = METHODS
) -> FoldMaps:
    """Return the :class:`FoldMaps` of ``views`` by ``model``: each view explained for the class
    the model calls."""
    from gynmri.training.step import predict_proba

    called = predict_proba(model, views.images).argmax(axis=1)
    maps = {m: class_maps(model, views.images, called, m) for m in methods}
    return FoldMaps(sequence, fold, views, called, maps)


def explain_run(
    models: Mapping[tuple[str, int], str | Path],
    listings: Mapping[int, str | Path],
    size: int,
    methods: Iterable[str] = METHODS,
) -> list[FoldMaps]:
    """Return the :class:`FoldMaps` of every (sequence, fold) of ``models`` (-> model folder),
    on the fold's held-out patients (``listings``: fold -> its wide test listing)."""
    from gynmri.training.weights import load_model

    out = []
    for (sequence, fold), folder in models.items():
        wide = read_wide(listed_tables(listings[fold]), sequence)
        views = tumour_views(wide, size)
        model, _ = load_model(Path(folder))
        out.append(explain_fold(model, views, sequence, fold, methods))
    return out


def per_patient(folds: Iterable[FoldMaps]) -> pd.DataFrame:
    """Return one row per patient and method: sequence, fold, method, patient, label_index,
    called, correct, hit (pointing game), energy (share in the tumour; NaN for an all-zero
    map), tumour_share, flat."""
    columns = ["sequence", "fold", "method", "patient", "label_index", "called", "correct"]
    columns += ["hit", "energy", "tumour_share", "flat"]
    rows = [
        {
            "sequence": f.sequence,
            "fold": f.fold,
            "method": method,
            "patient": patient,
            "label_index": int(f.views.labels[i]),
            "called": int(f.called[i]),
            "correct": bool(f.called[i] == f.views.labels[i]),
            "hit": pointing_hit(maps[i], f.views.masks[i]),
            "energy": energy_in_mask(maps[i], f.views.masks[i]),
            "tumour_share": float(f.views.masks[i].mean()),
            "flat": is_flat(maps[i]),
        }
        for f in folds
        for method, maps in f.maps.items()
        for i, patient in enumerate(f.views.patients)
    ]
    return pd.DataFrame(rows, columns=columns)


def summarise(
    table: pd.DataFrame,
    sequences: Iterable[str] | None = None,
    methods: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Return one row per sequence and method (``SUMMARY_COLUMNS``; by default those of the
    table) of a :func:`per_patient` table: ``patients`` correctly classified (the ones scored) of
    ``patients_total``; their pointing-game hit rate, mean energy share in the tumour, mean
    tumour share of the crop and share of flat maps (NaN when none was called right)."""
    sequences = dict.fromkeys(table["sequence"]) if sequences is None else sequences
    methods = list(dict.fromkeys(table["method"]) if methods is None else methods)
    rows = []
    for sequence in sequences:
        for method in methods:
            part = table[(table["sequence"] == sequence) & (table["method"] == method)]
            right = part[part["correct"]]
            rows.append(
                {
                    "sequence": sequence,
                    "method": method,
                    "patients": len(right),
                    "patients_total": len(part),
                    "pointing_hit_rate": right["hit"].astype(float).mean(),
                    "energy_in_tumour": right["energy"].mean(),
                    "tumour_share": right["tumour_share"].mean(),
                    "flat_maps": right["flat"].astype(float).mean(),
                }
            )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def score_run(
    models: Mapping[tuple[str, int], str | Path],
    listings: Mapping[int, str | Path],
    size: int,
    methods: Iterable[str] = METHODS,
) -> tuple[list[FoldMaps], pd.DataFrame, pd.DataFrame]:
    """Return (the maps of :func:`explain_run`, the :func:`per_patient` table, its
    :func:`summarise` summary) of a run's fold models on their held-out patients."""
    methods = list(methods)
    folds = explain_run(models, listings, size, methods)
    table = per_patient(folds)
    sequences = dict.fromkeys(sequence for sequence, _ in models)
    return folds, table, summarise(table, sequences, methods)
