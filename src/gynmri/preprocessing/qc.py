"""QC tables: per-patient QC records gathered into per-file, per-series and cohort tables."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from gynmri.io.deid import series_key


def _series_entry(s, exam, used, secret: bytes) -> dict:
    """Return the QC facts of one series: header facts and what became of it."""
    return {
        "series": series_key(secret, s.uid),
        "number": s.number,
        "description": s.description,
        "sequence": exam.sequence_of.get(s.uid),
        "status": "excluded" if s.uid in exam.reasons else "used",
        "reason": exam.reasons.get(s.uid, ""),
        "vendor": s.manufacturer,
        "model": s.model,
        "field_strength": s.field_strength,
        "plane": s.plane,
        "pixel_spacing": list(s.pixel_spacing) if s.pixel_spacing else None,
        "slice_thickness": s.slice_thickness,
        "matrix": list(s.matrix) if s.matrix else None,
        "files": len(s.files),
        "bvalues": s.bvalues,
        "volumes": used.kinds.get(s.uid, ""),
        "volume_used": used.volume.get(s.uid, ""),
        "dwi_trace": used.trace.get(s.uid, ""),
        "volume_slices": used.volume_slices.get(s.uid, 0),
        "tumour_slices": used.tumour_slices.get(s.uid, 0),
        "warnings": "; ".join(used.warnings.get(s.uid, [])),
    }


def qc_record(case: Mapping, patient_dir: Path, exam, used, secret: bytes) -> dict:
    """Return one patient's QC record: an entry per file (path relative to the patient's folder,
    keyed series hash, status, reason) and one per series (see :func:`series_table`)."""
    files = [
        {
            "file": str(r.path.relative_to(patient_dir)),
            "series": series_key(secret, r.series_uid) if r.series_uid else None,
            "status": r.status,
            "reason": r.reason,
        }
        for r in exam.records
    ]
    series = [_series_entry(s, exam, used, secret) for s in exam.series]
    return {
        "patient": case["patient"],
        "center": case["center"],
        "label": case["label"],
        "files": files,
        "series": series,
    }


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
