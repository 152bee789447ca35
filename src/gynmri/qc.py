"""QC tables: per-patient QC records gathered into per-file, per-series and cohort tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def load_records(paths: list[str | Path]) -> list[dict]:
    """Return the QC records written by ingest."""
    return [json.loads(Path(p).read_text()) for p in paths]


def files_table(records: list[dict]) -> pd.DataFrame:
    """Return one row per input file: patient, file (relative), series, status, reason."""
    rows = [
        {"patient": r["patient"], "center": r["center"], **f} for r in records for f in r["files"]
    ]
    return pd.DataFrame(rows, columns=["patient", "center", "file", "series", "status", "reason"])


def series_table(records: list[dict]) -> pd.DataFrame:
    """Return one row per series with its header facts and what became of it."""
    rows = [
        {"patient": r["patient"], "center": r["center"], **s} for r in records for s in r["series"]
    ]
    table = pd.DataFrame(rows)
    for col in ("pixel_spacing", "matrix", "bvalues"):
        if col in table:
            table[col] = table[col].map(lambda v: "x".join(f"{x:g}" for x in v) if v else "")
    return table


def cohort_table(records: list[dict], series: pd.DataFrame, sequences: list[str]) -> pd.DataFrame:
    """Return patients per center x label, with tumour slices and patients per used sequence."""
    patients = pd.DataFrame([{k: r[k] for k in ("patient", "center", "label")} for r in records])
    out = patients.groupby(["center", "label"]).size().rename("patients").reset_index()
    used = series[series["status"] == "used"]
    for seq in sequences:
        part = used[used["sequence"] == seq]
        merged = patients.merge(part[["patient", "tumour_slices"]], on="patient", how="left")
        grouped = merged.groupby(["center", "label"])
        out[f"{seq}_patients"] = grouped["tumour_slices"].count().to_numpy()
        out[f"{seq}_slices"] = grouped["tumour_slices"].sum().astype(int).to_numpy()
    return out
