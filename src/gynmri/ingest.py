"""Ingest one patient: discover series, name them, harmonise the used ones, keep tumour slices.

Returns the patient's slice table (see gynmri.slices) and a QC record that accounts for every
file in the patient's folder. Only pseudonyms reach either: the patient key, keyed series
hashes, paths relative to the patient's folder, and non-identifying header facts.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from gynmri import detect, harmonize
from gynmri.annotations import AnnotationError, AnnotationIndex
from gynmri.deid import series_key
from gynmri.dicom import Series, discover
from gynmri.sequences import name_series
from gynmri.slices import WIDE_SCHEMA, empty_slices, encode_mask, encode_pixels
from gynmri.volumes import build_volumes, choose_volume

__all__ = ["WIDE_SCHEMA", "AnnotationError", "ingest_patient", "wide_slices"]

log = logging.getLogger(__name__)


def _choose_series(
    candidates: list[Series], annotations: AnnotationIndex
) -> tuple[Series | None, dict[str, str]]:
    """Return the series to use for one sequence and the exclusion reason of the others."""
    annotated = [s for s in candidates if annotations.source(s)]
    reasons = {s.uid: "no annotation (no tumour mask for this series)" for s in candidates}
    if not annotated:
        return None, reasons
    chosen = max(annotated, key=lambda s: s.number)  # a repeat is usually the better one
    for s in annotated:
        if s is not chosen:
            reasons[s.uid] = f"repeated sequence (series {chosen.number} used)"
    del reasons[chosen.uid]
    return chosen, reasons


def wide_slices(image: sitk.Image, plane: str, hcfg: dict, wide_fov_mm: float,
                mask: sitk.Image | None = None) -> tuple[np.ndarray, np.ndarray | None]:  # fmt: skip
    """Return every slice of a volume on the wide grid (centred on the volume, the classifier's
    pixel spacing), normalised as the classifier's slices, and the mask on it when given."""
    n = detect.wide_size(hcfg["size"], hcfg["fov_mm"], wide_fov_mm)
    fov = n * hcfg["fov_mm"] / hcfg["size"]
    grid = harmonize.canonical_grid(image, plane, n, fov, harmonize.centre_of(image, None))
    reference = sitk.GetArrayViewFromImage(image)
    low = float(np.percentile(reference, hcfg["clip_percentiles"][0]))
    resampled = sitk.GetArrayFromImage(harmonize.resample(image, grid, fill=low))
    values = harmonize.normalise(
        resampled, np.asarray(reference), hcfg["normalize"], hcfg["clip_percentiles"]
    )
    if mask is None:
        return values, None
    mask_rs = sitk.GetArrayFromImage(harmonize.resample(mask, grid, sitk.sitkNearestNeighbor))
    return values, mask_rs > 0


def harmonise_series(series: Series, annotations: AnnotationIndex, hcfg: dict):
    """Return (slices, tumour fractions, slice positions, chosen volume, warnings, mask) of one
    series; the mask is on the volume's own grid."""
    volumes, warnings = build_volumes(series)
    volume = choose_volume(volumes, hcfg.get("dwi_bvalue", "highest"))
    image = volume.image
    mask = annotations.mask_for(series, image, volume.files)
    centre_on_tumour = hcfg.get("center_on", "tumour") == "tumour"
    centre = harmonize.centre_of(image, mask if centre_on_tumour else None)
    grid = harmonize.canonical_grid(image, series.plane, hcfg["size"], hcfg["fov_mm"], centre)
    reference = sitk.GetArrayViewFromImage(image)
    low = float(np.percentile(reference, hcfg["clip_percentiles"][0]))
    resampled = sitk.GetArrayFromImage(harmonize.resample(image, grid, fill=low))
    mask_rs = sitk.GetArrayFromImage(harmonize.resample(mask, grid, sitk.sitkNearestNeighbor))
    values = harmonize.normalise(
        resampled, np.asarray(reference), hcfg["normalize"], hcfg["clip_percentiles"]
    )
    fractions = (mask_rs > 0).mean(axis=(1, 2))
    positions = np.array(grid.origin) @ grid.direction[:, 2] + grid.spacing[2] * np.arange(
        grid.size[2]
    )
    return values, fractions, positions, volume, warnings, mask


def ingest_patient(
    patient_dir: Path,
    masks_dir: Path,
    *,
    key: str,
    center: str,
    label: str,
    label_index: int,
    config: dict,
    rules: list[dict],
    secret: bytes,
    ranges: list[dict] | None = None,
    wide: list | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Return the slice table and the QC record of one patient.

    ``ranges`` are the patient's rows of the tumour slice-range table, if one is used.
    ``wide``: a list that receives the patient's wide-table rows (every slice of each used
    series on the detector's wide grid, see gynmri.detect), when given.

    Raises:
        FileNotFoundError: the patient's DICOM folder does not exist.
        AnnotationError: an annotation does not match its series' geometry.
    """
    if not patient_dir.is_dir():
        raise FileNotFoundError(f"patient {key}: DICOM folder not found (see the cases table)")
    hcfg, wanted = config["harmonize"], config["sequences"]["use"]
    records, series_list = discover(patient_dir)
    by_sequence: dict[str, list[Series]] = {}
    series_reason: dict[str, str] = {}
    series_sequence: dict[str, str | None] = {}
    for s in series_list:
        naming = name_series(rules, s)
        series_sequence[s.uid] = naming.sequence
        if naming.sequence is None:
            series_reason[s.uid] = naming.reason
        elif naming.sequence not in wanted:
            series_reason[s.uid] = f"sequence {naming.sequence} not in config sequences/use"
        else:
            by_sequence.setdefault(naming.sequence, []).append(s)

    annotations = AnnotationIndex(masks_dir, list(ranges or []))
    rows, used_slices, series_warnings, volume_slices = [], {}, {}, {}
    for sequence, candidates in by_sequence.items():
        chosen, reasons = _choose_series(candidates, annotations)
        series_reason.update(reasons)
        if chosen is None:
            continue
        try:
            values, fractions, positions, volume, warnings, mask = harmonise_series(
                chosen, annotations, hcfg
            )
        except harmonize.SeriesError as err:
            series_reason[chosen.uid] = str(err)
            continue
        series_warnings[chosen.uid] = warnings
        volume_slices[chosen.uid] = volume.image.GetSize()[2]
        used_ids = {id(f) for f in volume.files}
        if volume.bvalue is not None:
            unused = f"b-value not used (b={volume.bvalue:g} selected)"
        else:
            unused = f"other volume not used ({volume.label or 'first volume'} selected)"
        for f in chosen.files:
            if id(f) not in used_ids:
                f.status, f.reason = "excluded", unused
        keep = np.flatnonzero(fractions >= hcfg["min_tumour_fraction"])
        used_slices[chosen.uid] = len(keep)
        if len(keep) == 0:
            series_reason[chosen.uid] = "mask has no slice above min_tumour_fraction"
            continue
        skey = series_key(secret, chosen.uid)
        if wide is not None:
            dcfg = config.get("detect") or {}
            wvalues, wmask = wide_slices(
                volume.image, chosen.plane, hcfg, dcfg.get("fov_mm", 280.0), mask
            )
            annotated = set(keep.tolist())
            for k in range(len(wvalues)):
                wide.append({
                    "patient": key, "label": label, "label_index": label_index,
                    "sequence": sequence, "series": skey, "slice_index": k,
                    "annotated": k in annotated, "height": wvalues.shape[1],
                    "width": wvalues.shape[2], "pixels": encode_pixels(wvalues[k]),
                    "mask": encode_mask(wmask[k]),
                })  # fmt: skip
        row_spacing, col_spacing = chosen.pixel_spacing or (np.nan, np.nan)
        for k in keep:
            rows.append(
                {
                    "patient": key, "center": center, "label": label, "label_index": label_index,
                    "sequence": sequence, "series": skey, "slice_index": int(k),
                    "slice_position_mm": float(positions[k]),
                    "tumour_fraction": float(fractions[k]),
                    "height": values.shape[1], "width": values.shape[2],
                    "pixels": encode_pixels(values[k]),
                    "vendor": chosen.manufacturer, "field_strength": chosen.field_strength,
                    "spacing_row_mm": row_spacing, "spacing_col_mm": col_spacing,
                    "slice_thickness_mm": chosen.slice_thickness or np.nan,
                }
            )  # fmt: skip

    for s in series_list:
        for f in s.files:
            if f.status != "pending":
                continue
            if s.uid in series_reason:
                f.status, f.reason = "excluded", series_reason[s.uid]
            else:
                f.status = "used"
    table = pd.DataFrame(rows) if rows else empty_slices()
    qc = _qc_record(key, center, label, patient_dir, records, series_list, series_sequence,
                    series_reason, used_slices, series_warnings, volume_slices, secret)  # fmt: skip
    return table, qc


def _qc_record(key, center, label, patient_dir, records, series_list, series_sequence,
               series_reason, used_slices, series_warnings, volume_slices, secret) -> dict:  # fmt: skip
    """Return the patient's QC record: one entry per file and one per series."""
    files = [
        {
            "file": str(r.path.relative_to(patient_dir)),
            "series": series_key(secret, r.series_uid) if r.series_uid else None,
            "status": r.status,
            "reason": r.reason,
        }
        for r in records
    ]
    series = [
        {
            "series": series_key(secret, s.uid),
            "number": s.number,
            "description": s.description,
            "sequence": series_sequence.get(s.uid),
            "status": "excluded" if s.uid in series_reason else "used",
            "reason": series_reason.get(s.uid, ""),
            "vendor": s.manufacturer,
            "model": s.model,
            "field_strength": s.field_strength,
            "plane": s.plane,
            "pixel_spacing": list(s.pixel_spacing) if s.pixel_spacing else None,
            "slice_thickness": s.slice_thickness,
            "matrix": list(s.matrix) if s.matrix else None,
            "files": len(s.files),
            "bvalues": s.bvalues,
            "volume_slices": volume_slices.get(s.uid, 0),
            "tumour_slices": used_slices.get(s.uid, 0),
            "warnings": "; ".join(series_warnings.get(s.uid, [])),
        }
        for s in series_list
    ]
    return {"patient": key, "center": center, "label": label, "files": files, "series": series}
