"""Patient-level cross-validation folds, stratified by label and center."""

from __future__ import annotations

from pathlib import Path

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


def only_patients(table: pd.DataFrame, patients: list[str], what: str) -> pd.DataFrame:
    """Return ``table`` after checking that it holds no patient outside ``patients`` (a job's
    inputs are exactly its fold's patients; anything else would be leakage)."""
    foreign = set(table["patient"]) - set(patients)
    if foreign:
        raise LeakageError(f"{what} of patients outside this set: {sorted(foreign)}")
    return table


def check_covered(folds: pd.DataFrame, patients: set[str]) -> None:
    """Raise LeakageError when a patient with slices has no fold or is in several."""
    missing = patients - set(folds["patient"])
    if missing:
        raise LeakageError(f"patients missing from the folds: {sorted(missing)}")
    repeated = folds["patient"][folds["patient"].duplicated()]
    if len(repeated):
        raise LeakageError(f"patients in several folds: {sorted(set(repeated))}")


def place_new_patients(
    locked: pd.DataFrame, patients: pd.DataFrame, k: int, seed: int
) -> pd.DataFrame:
    """Return the folds of ``patients``: locked patients keep their fold, new ones are placed.

    Each new patient (in a seeded order) goes to the fold with the fewest patients of its label,
    then of its center, then in total, so label counts stay within one of each other.

    Raises:
        LeakageError: the lock was made for another k, or a locked patient changed label.
    """
    if len(locked) and int(locked["fold"].max()) >= k:
        raise LeakageError(
            f"the folds lock has folds up to {int(locked['fold'].max())} but folds/k is {k}: "
            "use a new lock file for another k"
        )
    if not len(locked):
        return assign_folds(patients, k, seed)
    merged = patients.merge(
        locked[["patient", "label", "fold"]], on="patient", how="left", suffixes=("", "_locked")
    )
    changed = merged[merged["fold"].notna() & (merged["label"] != merged["label_locked"])]
    if len(changed):
        raise LeakageError(
            f"patients whose label differs from the folds lock: {sorted(changed['patient'])}"
        )
    known = merged[merged["fold"].notna()].astype({"fold": int})
    new = merged[merged["fold"].isna()].drop(columns=["fold", "label_locked"])
    # count over the whole lock (patients since removed included), so balance holds for the lock
    counts = locked.astype({"fold": int})
    order = np.random.default_rng(seed).permutation(len(new))
    placed = []
    for _, row in new.sort_values("patient").iloc[order].iterrows():
        loads = []
        for f in range(k):
            in_fold = counts[counts["fold"] == f]
            same_label = int((in_fold["label"] == row["label"]).sum())
            same_center = int((in_fold["center"] == row["center"]).sum())
            loads.append((same_label, same_center, len(in_fold), f))
        fold = min(loads)[3]
        entry = {
            "patient": row["patient"],
            "label": row["label"],
            "center": row["center"],
            "fold": fold,
        }
        counts = pd.concat([counts, pd.DataFrame([entry])], ignore_index=True)
        placed.append(entry)
    out = pd.concat(
        [known[FOLD_COLUMNS], pd.DataFrame(placed, columns=FOLD_COLUMNS)], ignore_index=True
    )
    return out.astype({"fold": int}).sort_values("patient").reset_index(drop=True)


def read_lock(path: str | Path) -> pd.DataFrame:
    """Return the folds lock file, or an empty table when it does not exist yet."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=FOLD_COLUMNS)
    lock = pd.read_csv(
        path, sep="\t", dtype={"patient": str, "label": str, "center": str, "fold": int}
    )
    missing = [c for c in FOLD_COLUMNS if c not in lock.columns]
    if missing:
        raise LeakageError(f"folds lock {path}: missing columns {missing}")
    if lock["patient"].duplicated().any():
        raise LeakageError(
            f"folds lock {path}: patients listed twice: {sorted(set(lock['patient'][lock['patient'].duplicated()]))}"
        )
    return lock[FOLD_COLUMNS]


def update_lock(path: str | Path, patients: pd.DataFrame, k: int, seed: int) -> pd.DataFrame:
    """Return the current patients' folds, adding new patients to the lock file at ``path``.

    Patients already in the lock never move; patients no longer in the cases table stay in the
    lock (so their fold is kept if they come back) but are not returned.
    """
    path = Path(path)
    locked = read_lock(path)
    folds = place_new_patients(locked, patients, k, seed)
    added = folds[~folds["patient"].isin(locked["patient"])]
    if len(added) or not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        full = pd.concat([locked, added], ignore_index=True).sort_values("patient")
        full.to_csv(path, sep="\t", index=False)
    return folds
