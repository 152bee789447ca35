"""One cross-validation job: train on the other folds' patients, predict the held-out fold."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.evaluate import prob_columns
from gynmri.folds import check_covered, split
from gynmri.slices import read_slices, to_images

log = logging.getLogger(__name__)


def validation_patients(train: pd.DataFrame, fraction: float, seed: int) -> set[str]:
    """Return a label-stratified share of the training patients held out for validation curves."""
    if fraction <= 0:
        return set()
    rng = np.random.default_rng(seed)
    chosen: set[str] = set()
    patients = train.drop_duplicates("patient")
    for _, group in patients.groupby("label"):
        keys = np.sort(group["patient"].to_numpy())
        n = int(round(fraction * len(keys)))
        if len(keys) >= 3 and n >= 1:
            chosen.update(rng.choice(keys, size=n, replace=False).tolist())
    return chosen


def train_fold(slice_paths: list[str], folds_path: str, sequence: str, fold: int, classes: list[str],
               model_cfg: dict, train_cfg: dict, out_model: Path, out_predictions: Path,
               out_history: Path) -> pd.DataFrame:  # fmt: skip
    """Train one (sequence, fold) model, save it, and return its held-out predictions.

    Raises:
        LeakageError: a patient is in training and test data, or has slices but no fold.
    """
    from gynmri.train import fit, predict_proba, save_model  # jax import only when training

    folds = pd.read_csv(folds_path, sep="\t")
    train_patients, test_patients = split(folds, fold)
    slices = read_slices(slice_paths, sequence)
    check_covered(folds, set(slices["patient"]))
    train = slices[slices["patient"].isin(train_patients)]
    test = slices[slices["patient"].isin(test_patients)]
    val_keys = validation_patients(
        train, train_cfg.get("val_fraction", 0.2), train_cfg.get("seed", 0) + fold
    )
    val = train[train["patient"].isin(val_keys)]
    fit_part = train[~train["patient"].isin(val_keys)]
    log.info(
        "%s fold %d: %d training slices (%d patients), %d validation slices (%d patients), "
        "%d test slices (%d patients)",
        sequence, fold, len(fit_part), fit_part["patient"].nunique(), len(val), len(val_keys),
        len(test), test["patient"].nunique(),
    )  # fmt: skip
    model, history = fit(
        to_images(fit_part),
        fit_part["label_index"].to_numpy(np.int32),
        len(classes),
        model_cfg,
        train_cfg,
        val_images=to_images(val) if len(val) else None,
        val_labels=val["label_index"].to_numpy(np.int32) if len(val) else None,
        log=log.info,
    )
    save_model(model, Path(out_model), {"classes": classes, "sequence": sequence, "fold": fold,
                                         "size": int(fit_part["height"].iloc[0])})  # fmt: skip
    history.to_csv(out_history, sep="\t", index=False)
    probs = predict_proba(model, to_images(test)) if len(test) else np.zeros((0, len(classes)))
    predictions = test[["patient", "sequence", "label", "slice_index"]].reset_index(drop=True)
    predictions.insert(2, "fold", fold)
    predictions[prob_columns(classes)] = probs
    predictions.to_parquet(out_predictions, index=False)
    return predictions
