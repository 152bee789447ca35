"""Cross-validation jobs: train on a fold's training patients; predict its held-out patients."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.evaluate import prob_columns
from gynmri.folds import LeakageError
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


def _slices_of(slice_paths: list[str], patients: list[str], sequence: str) -> pd.DataFrame:
    """Return the sequence's slices of exactly ``patients``, refusing any other patient."""
    slices = read_slices(slice_paths, sequence)
    foreign = set(slices["patient"]) - set(patients)
    if foreign:
        raise LeakageError(f"slice tables of patients outside this set: {sorted(foreign)}")
    return slices


def train_fold(slice_paths: list[str], train_patients: list[str], sequence: str, fold: int,
               classes: list[str], model_cfg: dict, train_cfg: dict, out_model: Path,
               out_history: Path, checkpoint_dir: Path | None = None) -> None:  # fmt: skip
    """Train the (sequence, fold) model on its training patients and save it with its history."""
    from gynmri.train import fit, save_model  # jax is imported only by training jobs

    train = _slices_of(slice_paths, train_patients, sequence)
    if train.empty:
        raise ValueError(
            f"{sequence} fold {fold}: no training slices (check results/qc/series.tsv)"
        )
    val_keys = validation_patients(
        train, train_cfg.get("val_fraction", 0.2), train_cfg.get("seed", 0) + fold
    )
    val = train[train["patient"].isin(val_keys)]
    fit_part = train[~train["patient"].isin(val_keys)]
    log.info(
        "%s fold %d: %d training slices (%d patients), %d validation slices (%d patients)",
        sequence, fold, len(fit_part), fit_part["patient"].nunique(), len(val), len(val_keys),
    )  # fmt: skip
    kwargs = {"checkpoint_dir": checkpoint_dir} if checkpoint_dir else {}
    model, history = fit(
        to_images(fit_part),
        fit_part["label_index"].to_numpy(np.int32),
        len(classes),
        model_cfg,
        train_cfg,
        val_images=to_images(val) if len(val) else None,
        val_labels=val["label_index"].to_numpy(np.int32) if len(val) else None,
        log=log.info,
        **kwargs,
    )
    meta = {"classes": classes, "sequence": sequence, "fold": fold, "size": int(fit_part["height"].iloc[0]),
            "training_patients": len(train_patients)}  # fmt: skip
    save_model(model, Path(out_model), meta)
    history.to_csv(out_history, sep="\t", index=False)
    if checkpoint_dir:
        # Checkpoints only serve to resume a killed job; the saved model replaces them.
        shutil.rmtree(checkpoint_dir, ignore_errors=True)


def predict_fold(model_dir: Path, slice_paths: list[str], test_patients: list[str], sequence: str,
                 fold: int, classes: list[str], out_predictions: Path) -> pd.DataFrame:  # fmt: skip
    """Write and return the class probabilities of every held-out slice of one fold."""
    from gynmri.train import load_model, predict_proba

    model, meta = load_model(Path(model_dir))
    if meta.get("classes") != list(classes):
        raise ValueError(
            f"model {model_dir} was trained for classes {meta.get('classes')}, not {classes}"
        )
    test = _slices_of(slice_paths, test_patients, sequence)
    probs = predict_proba(model, to_images(test)) if len(test) else np.zeros((0, len(classes)))
    predictions = test[["patient", "sequence", "label", "slice_index"]].reset_index(drop=True)
    predictions.insert(2, "fold", fold)
    predictions[prob_columns(classes)] = probs
    predictions.to_parquet(out_predictions, index=False)
    log.info(
        "%s fold %d: %d slices of %d patients predicted",
        sequence,
        fold,
        len(test),
        test["patient"].nunique(),
    )
    return predictions
