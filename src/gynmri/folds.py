"""Patient-level cross-validation folds, stratified by label and center."""

from __future__ import annotations

import numpy as np
import pandas as pd

FOLD_COLUMNS = ["patient", "label", "center", "fold"]


class LeakageError(RuntimeError):
    """A patient is in a fold's training and test data, or is missing from the folds."""


def assign_folds(patients: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """Return one row per patient (patient, label, center, fold) with folds 0..k-1.

    Within each label, patients are ordered by center and shuffled within center, then dealt
    round-robin, so every fold gets its share of each label (within one) and of each center.
    """
    if patients["patient"].duplicated().any():
        raise ValueError("patients table has repeated patient keys")
    counts = patients["label"].value_counts()
    if (counts < k).any():
        small = counts[counts < k].to_dict()
        raise ValueError(f"fewer patients than folds (k={k}) for labels {small}")
    rng = np.random.default_rng(seed)
    out, offset = [], 0
    for label in sorted(patients["label"].unique()):
        group = patients[patients["label"] == label].sort_values(["center", "patient"])
        order = []
        for _, by_center in group.groupby("center", sort=True):
            order.extend(by_center["patient"].to_numpy()[rng.permutation(len(by_center))])
        for i, key in enumerate(order):
            out.append((key, (i + offset) % k))
        offset += len(order)
    folds = pd.DataFrame(out, columns=["patient", "fold"])
    folds = patients[["patient", "label", "center"]].merge(folds, on="patient")
    return folds[FOLD_COLUMNS].sort_values("patient").reset_index(drop=True)


def split(folds: pd.DataFrame, test_fold: int) -> tuple[set[str], set[str]]:
    """Return (training patients, test patients) of one fold, checked for leakage."""
    train = set(folds.loc[folds["fold"] != test_fold, "patient"])
    test = set(folds.loc[folds["fold"] == test_fold, "patient"])
    if train & test:
        raise LeakageError(
            f"fold {test_fold}: patients in both training and test: {sorted(train & test)}"
        )
    if not test:
        raise LeakageError(f"fold {test_fold} has no test patients")
    return train, test


def check_covered(folds: pd.DataFrame, patients: set[str]) -> None:
    """Raise LeakageError when a patient with slices has no fold or is in several."""
    missing = patients - set(folds["patient"])
    if missing:
        raise LeakageError(f"patients missing from the folds: {sorted(missing)}")
    repeated = folds["patient"][folds["patient"].duplicated()]
    if len(repeated):
        raise LeakageError(f"patients in several folds: {sorted(set(repeated))}")
