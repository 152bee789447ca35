"""Patient-level cross-validation folds: stratified k-fold, or leave one centre out.

Two schemes (config ``folds/scheme``):

- ``kfold``: k folds stratified by label and center (:func:`assign_folds`);
- ``centre``: one fold per hospital, its test set that hospital's patients and its training set
  every other hospital's (external validation, :func:`centre_folds`).

Both are recorded in one lock file (:func:`update_lock`), one row per patient and scheme, so that
patients never move between folds when cases are added, and a new hospital gets a new fold
instead of renumbering the others.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FOLD_COLUMNS = ["patient", "label", "center", "fold"]
#: The lock file's columns: a fold per patient and scheme.
LOCK_COLUMNS = [*FOLD_COLUMNS, "scheme"]
SCHEMES = ("kfold", "centre")


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


def centre_folds(locked: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """Return one row per patient with fold = its hospital's number (leave one centre out).

    Hospitals in ``locked`` (the lock's centre rows) keep their number; new hospitals get the
    next numbers in name order, so adding a hospital never renumbers the others.

    Raises:
        LeakageError: a locked patient changed hospital or label.
        ValueError: fewer than two hospitals (nothing to hold out).
    """
    if patients["patient"].duplicated().any():
        raise ValueError("patients table has repeated patient keys")
    numbers = dict(zip(locked["center"], locked["fold"].astype(int), strict=True))
    for center in sorted(set(patients["center"]) - set(numbers)):
        numbers[center] = max(numbers.values(), default=-1) + 1
    if len(set(patients["center"])) < 2:
        raise ValueError(
            f"leave-one-centre-out needs patients of two hospitals or more (cases table: "
            f"{sorted(set(patients['center']))})"
        )
    merged = patients.merge(locked, on="patient", how="left", suffixes=("", "_locked"))
    for what in ("center", "label"):
        moved = merged[
            merged[f"{what}_locked"].notna() & (merged[what] != merged[f"{what}_locked"])
        ]
        if len(moved):
            raise LeakageError(
                f"patients whose {what} differs from the folds lock: {sorted(moved['patient'])}"
            )
    out = patients[["patient", "label", "center"]].assign(fold=patients["center"].map(numbers))
    return out[FOLD_COLUMNS].astype({"fold": int}).sort_values("patient").reset_index(drop=True)


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


def read_lock(path: str | Path, scheme: str = "kfold") -> pd.DataFrame:
    """Return the folds lock's rows of ``scheme`` (an empty table when there is no lock yet).

    A lock without a ``scheme`` column (written before leave-one-centre-out existed) holds
    k-fold rows."""
    path = Path(path)
    lock = _read_full_lock(path)
    return lock.loc[lock["scheme"] == scheme, FOLD_COLUMNS].reset_index(drop=True)


def _read_full_lock(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame(columns=LOCK_COLUMNS)
    lock = pd.read_csv(
        path,
        sep="\t",
        dtype={"patient": str, "label": str, "center": str, "fold": int, "scheme": str},
    )
    missing = [c for c in FOLD_COLUMNS if c not in lock.columns]
    if missing:
        raise LeakageError(f"folds lock {path}: missing columns {missing}")
    if "scheme" not in lock.columns:
        lock["scheme"] = "kfold"
    unknown = sorted(set(lock["scheme"]) - set(SCHEMES))
    if unknown:
        raise LeakageError(f"folds lock {path}: unknown schemes {unknown} (known: {SCHEMES})")
    repeated = lock[lock.duplicated(["patient", "scheme"])]
    if len(repeated):
        raise LeakageError(
            f"folds lock {path}: patients listed twice: {sorted(set(repeated['patient']))}"
        )
    return lock[LOCK_COLUMNS]


def update_lock(
    path: str | Path, patients: pd.DataFrame, k: int | None, seed: int, scheme: str = "kfold"
) -> pd.DataFrame:
    """Return the current patients' folds of ``scheme``, adding new patients to the lock file.

    Patients already in the lock never move; patients no longer in the cases table stay in the
    lock (so their fold is kept if they come back) but are not returned. ``k`` and ``seed``
    serve the k-fold scheme only.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown folds scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    path = Path(path)
    full = _read_full_lock(path)
    locked = full.loc[full["scheme"] == scheme, FOLD_COLUMNS]
    if scheme == "kfold":
        folds = place_new_patients(locked, patients, k, seed)
    else:
        folds = centre_folds(locked, patients)
    added = folds[~folds["patient"].isin(locked["patient"])]
    if len(added) or not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        full = pd.concat([full, added.assign(scheme=scheme)], ignore_index=True)
        full.sort_values(["scheme", "patient"], key=_kfold_first).to_csv(
            path, sep="\t", index=False
        )
    return folds


def _kfold_first(column: pd.Series) -> pd.Series:
    """Sort key of the lock's rows: k-fold rows first (the order of locks written before)."""
    return column.map(SCHEMES.index) if column.name == "scheme" else column
