"""Cross-validation jobs: train on a fold's training patients; predict its held-out patients."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.config import section
from gynmri.evaluation.scoring import prob_columns
from gynmri.io.slices import read_slices, to_images
from gynmri.runlog import timed
from gynmri.training.folds import only_patients

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


def fit_and_save(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    model_cfg: dict,
    train_cfg: dict,
    meta: dict,
    out_model: Path,
    out_history: Path,
    checkpoint_dir: Path | None = None,
    validation=(None, None),
) -> None:
    """Train a model (:func:`gynmri.training.loop.fit`), save it with ``meta`` and its history,
    and drop the checkpoints, which only serve to resume a killed job."""
    from gynmri.training.loop import fit  # jax is imported only by jobs that train
    from gynmri.training.weights import save_model

    model, history = fit(
        images,
        labels,
        n_classes,
        model_cfg,
        train_cfg,
        *validation,
        log=log.info,
        checkpoint_dir=checkpoint_dir,
    )
    with timed(log, "writing the model"):
        save_model(model, Path(out_model), meta)
        history.to_csv(out_history, sep="\t", index=False)
    if checkpoint_dir:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)


def train_fold(
    slice_paths: list[str],
    train_patients: list[str],
    sequence: str,
    fold: int,
    classes: list[str],
    model_cfg: dict,
    train_cfg: dict,
    out_model: Path,
    out_history: Path,
    checkpoint_dir: Path | None = None,
) -> None:
    """Train the (sequence, fold) model on its training patients and save it with its history."""
    train_cfg = section("train", train_cfg)
    train = only_patients(read_slices(slice_paths, sequence), train_patients, "slice tables")
    if train.empty:
        raise ValueError(
            f"{sequence} fold {fold}: no training slices (check results/qc/series.tsv)"
        )
    val_keys = validation_patients(train, train_cfg["val_fraction"], train_cfg["seed"] + fold)
    val = train[train["patient"].isin(val_keys)]
    fit_part = train[~train["patient"].isin(val_keys)]
    log.info(
        "%s fold %d: %d training slices (%d patients), %d validation slices (%d patients)",
        sequence,
        fold,
        len(fit_part),
        fit_part["patient"].nunique(),
        len(val),
        len(val_keys),
    )
    validation = (
        (to_images(val), val["label_index"].to_numpy(np.int32)) if len(val) else (None, None)
    )
    meta = {
        "classes": classes,
        "sequence": sequence,
        "fold": fold,
        "size": int(fit_part["height"].iloc[0]),
        "training_patients": len(train_patients),
    }
    fit_and_save(
        to_images(fit_part),
        fit_part["label_index"].to_numpy(np.int32),
        len(classes),
        model_cfg,
        train_cfg,
        meta,
        out_model,
        out_history,
        checkpoint_dir,
        validation,
    )


def predict_fold(
    model_dir: Path,
    slice_paths: list[str],
    test_patients: list[str],
    sequence: str,
    fold: int,
    classes: list[str],
    out_predictions: Path,
    tta: dict | None = None,
) -> pd.DataFrame:
    """Write and return the class probabilities of every held-out slice of one fold (``tta``:
    see :func:`gynmri.training.step.predict_proba`)."""
    from gynmri.training.step import predict_proba
    from gynmri.training.weights import load_checked

    model, _ = load_checked(Path(model_dir), classes)
    test = only_patients(read_slices(slice_paths, sequence), test_patients, "slice tables")
    with timed(log, "prediction"):
        probs = (
            predict_proba(model, to_images(test), tta=tta)
            if len(test)
            else np.zeros((0, len(classes)))
        )
    predictions = prediction_rows(test, fold, classes, probs)
    predictions.to_parquet(out_predictions, index=False)
    log.info(
        "%s fold %d: %d slices of %d patients predicted",
        sequence,
        fold,
        len(test),
        test["patient"].nunique(),
    )
    return predictions


def prediction_rows(
    slices: pd.DataFrame, fold: int, classes: list[str], probs: np.ndarray
) -> pd.DataFrame:
    """Return the predictions contract (patient, sequence, fold, label, slice_index, p_<class>)
    for ``slices`` (rows of a slice or wide table) and their class probabilities."""
    rows = slices[["patient", "sequence", "label", "slice_index"]].reset_index(drop=True)
    rows.insert(2, "fold", fold)
    rows[prob_columns(classes)] = probs
    return rows
