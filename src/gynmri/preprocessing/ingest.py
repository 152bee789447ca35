"""Ingest one patient: discover series, name them, harmonize the used ones, keep tumour slices.

The same steps read a new exam in ``gynmri predict`` (nnU-Net's rule: inference runs the very
preprocessor training used): :func:`discover_exam` (every file, series named by the rule table,
filtered by ``sequences.use``), :func:`choose_series` (one series per sequence), :func:`read_volume`
(the volume of the series, DWI at the configured b-value), :func:`wide_slices` (every slice on the
detector's wide grid) and, with an annotation, :func:`tumour_slices`.

:func:`ingest_patient` returns the patient's slice table (see :mod:`gynmri.io.slices`), its wide
table and a QC record that accounts for every file in the patient's folder. Only pseudonyms
reach them: the patient key, keyed series hashes, paths relative to the patient's folder, and
non-identifying header facts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from gynmri.io.annotations import AnnotationIndex
from gynmri.io.choice import choose_volume
from gynmri.io.deid import series_key
from gynmri.io.dicom import FileRecord, Series, discover
from gynmri.io.kinds import MAGNITUDE, TRACE
from gynmri.io.slices import empty_slices, empty_wide, encode_mask, encode_pixels
from gynmri.io.volumes import Volume, build_volumes, volume_kinds
from gynmri.preprocessing import harmonize as hz
from gynmri.preprocessing.grid import plane_of, slice_centers
from gynmri.preprocessing.qc import qc_record
from gynmri.preprocessing.sequences import name_series

log = logging.getLogger(__name__)

NO_ANNOTATION = "no annotation (no tumour mask for this series)"


@dataclass(frozen=True)
class IngestSettings:
    """What ingest depends on besides the DICOM: config sequences/use, harmonize, detect/fov_mm
    (None: no wide table)."""

    sequences: list[str]
    harmonize: dict
    wide_fov_mm: float | None

    @classmethod
    def from_config(cls, config: Mapping) -> IngestSettings:
        """Return the settings of a validated, defaults-filled workflow config."""
        return cls(config["sequences"]["use"], config["harmonize"], config["detect"]["fov_mm"])


@dataclass
class Exam:
    """The files and series of one exam, named, with the series of each wanted sequence."""

    records: list[FileRecord]
    series: list[Series]
    sequence_of: dict[str, str | None] = field(default_factory=dict)  # uid -> name
    reasons: dict[str, str] = field(default_factory=dict)  # uid -> why the series is not used
    by_sequence: dict[str, list[Series]] = field(default_factory=dict)


@dataclass
class IngestResult:
    """One patient's tables: tumour slices, wide slices, and the QC record."""

    slices: pd.DataFrame
    wide: pd.DataFrame
    qc: dict


def discover_exam(folder: Path, rules: list[dict], wanted: list[str]) -> Exam:
    """Return every file under ``folder``, its series named by the rule table, and the series of
    each ``wanted`` sequence (the others get the reason they are not used)."""
    records, series_list = discover(folder)
    exam = Exam(records, series_list)
    for s in series_list:
        naming = name_series(rules, s)
        exam.sequence_of[s.uid] = naming.sequence
        if naming.sequence is None:
            exam.reasons[s.uid] = naming.reason
        elif naming.sequence not in wanted:
            exam.reasons[s.uid] = f"sequence {naming.sequence} not in config sequences/use"
        else:
            exam.by_sequence.setdefault(naming.sequence, []).append(s)
    return exam


def choose_series(
    candidates: list[Series], annotated: Callable[[Series], object] | None = None
) -> tuple[Series | None, dict[str, str]]:
    """Return (the series to use for one sequence, {uid: reason} for the others).

    The highest SeriesNumber wins (a repeat is usually the better one); with ``annotated``, only
    among the series it accepts (training needs the tumour annotation).
    """
    usable = [s for s in candidates if annotated is None or annotated(s)]
    reasons = {s.uid: NO_ANNOTATION for s in candidates if s not in usable}
    if not usable:
        return None, reasons
    chosen = max(usable, key=lambda s: s.number)
    reasons.update(
        {
            s.uid: f"repeated sequence (series {chosen.number} used)"
            for s in usable
            if s is not chosen
        }
    )
    return chosen, reasons


def read_volume(series: Series, harmonize: dict) -> tuple[Volume, list[str], list[Volume]]:
    """Return the volume of a series that is used (a magnitude image; DWI: the trace at the
    configured b-value, see :func:`gynmri.io.choice.choose_volume`), geometry warnings and all
    the series' volumes. Raises SeriesError when the series cannot be stacked."""
    volumes, warnings = build_volumes(series)
    return choose_volume(volumes, harmonize["dwi_bvalue"]), warnings, volumes


def wide_slices(
    image: sitk.Image,
    plane: str,
    harmonize: dict,
    wide_fov_mm: float,
    mask: sitk.Image | None = None,
) -> hz.Harmonized:
    """Return every slice of a volume on the wide grid (centered on the volume, the classifier's
    pixel spacing), normalized as the classifier's slices, with the mask when given."""
    n = hz.wide_size(harmonize["size"], harmonize["fov_mm"], wide_fov_mm)
    fov = n * harmonize["fov_mm"] / harmonize["size"]
    return hz.harmonize_volume(image, plane, n, fov, hz.center_of(image, None), harmonize, mask)


def tumour_slices(
    image: sitk.Image, plane: str, harmonize: dict, mask: sitk.Image
) -> hz.Harmonized:
    """Return every slice of a volume on the classifier's grid (centered on the tumour or on the
    volume, config harmonize/center_on), with the mask."""
    center = hz.center_of(image, mask if harmonize["center_on"] == "tumour" else None)
    return hz.harmonize_volume(
        image, plane, harmonize["size"], harmonize["fov_mm"], center, harmonize, mask
    )


@dataclass
class _Used:
    """What became of the used series of one patient (for QC)."""

    warnings: dict[str, list[str]] = field(default_factory=dict)
    volume_slices: dict[str, int] = field(default_factory=dict)
    tumour_slices: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # every series: its volumes' kinds
    volume: dict[str, str] = field(default_factory=dict)  # label of the volume used
    trace: dict[str, str] = field(default_factory=dict)  # DWI: trace read or computed


def _unused_reason(volume: Volume, chosen: Volume) -> str:
    """Return why the files of one volume of a used series are not used."""
    if volume.kind not in (MAGNITUDE, TRACE):
        return f"{volume.kind} image not used ({chosen.label or 'the image'} selected)"
    if volume.bvalue is not None and chosen.bvalue is not None and volume.bvalue != chosen.bvalue:
        return f"b-value not used (b={chosen.bvalue:g} selected)"
    if chosen.kind == TRACE and volume.kind == MAGNITUDE:
        return f"diffusion direction not used (the scanner's trace at b={chosen.bvalue:g} is read)"
    return f"other volume not used ({chosen.label or 'first volume'} selected)"


def _exclude_other_volumes(volumes: list[Volume], chosen: Volume) -> None:
    """Mark the files that only other volumes of a series use (other b-values, directions,
    echoes, phase images, field maps...) as excluded, each with the reason."""
    used = {id(f) for f in chosen.files + chosen.more_files}
    for v in volumes:
        for f in v.files:
            if id(f) not in used and f.status == "pending":
                f.status, f.reason = "excluded", _unused_reason(v, chosen)


def _slice_rows(
    case: Mapping,
    sequence: str,
    series: Series,
    skey: str,
    harmonized: hz.Harmonized,
    fractions: np.ndarray,
    keep: np.ndarray,
) -> list[dict]:
    """Return the slice-table rows of the kept tumour slices of one series."""
    row_spacing, col_spacing = series.pixel_spacing or (np.nan, np.nan)
    values = harmonized.values
    return [
        {
            "patient": case["patient"],
            "center": case["center"],
            "label": case["label"],
            "label_index": int(case["label_index"]),
            "sequence": sequence,
            "series": skey,
            "slice_index": int(k),
            "slice_position_mm": float(harmonized.positions[k]),
            "tumour_fraction": float(fractions[k]),
            "height": values.shape[1],
            "width": values.shape[2],
            "pixels": encode_pixels(values[k]),
            "vendor": series.manufacturer,
            "field_strength": series.field_strength,
            "spacing_row_mm": row_spacing,
            "spacing_col_mm": col_spacing,
            "slice_thickness_mm": series.slice_thickness or np.nan,
        }
        for k in keep
    ]


def _wide_rows(
    case: Mapping, sequence: str, skey: str, wide: hz.Harmonized, keep: np.ndarray
) -> list[dict]:
    """Return the wide-table rows of every slice of one series (annotated: a kept slice)."""
    annotated = set(keep.tolist())
    centers = slice_centers(wide.grid)
    plane = plane_of(wide.grid.direction)
    return [
        {
            "patient": case["patient"],
            "label": case["label"],
            "label_index": int(case["label_index"]),
            "sequence": sequence,
            "series": skey,
            "slice_index": k,
            "annotated": k in annotated,
            "height": wide.values.shape[1],
            "width": wide.values.shape[2],
            "pixels": encode_pixels(wide.values[k]),
            "mask": encode_mask(wide.mask[k]),
            "plane": plane,
            "pixel_mm": wide.grid.spacing[0],
            "center_x_mm": centers[k, 0],
            "center_y_mm": centers[k, 1],
            "center_z_mm": centers[k, 2],
        }
        for k in range(len(wide.values))
    ]


def _ingest_series(
    series: Series,
    sequence: str,
    annotations: AnnotationIndex,
    case: Mapping,
    settings: IngestSettings,
    secret: bytes,
    exam: Exam,
    used: _Used,
):
    """Return (slice rows, wide rows) of the series used for one sequence; record what became
    of it in ``exam.reasons`` (not used) or ``used`` (QC facts)."""
    hcfg = settings.harmonize
    try:
        volume, warnings, volumes = read_volume(series, hcfg)
        mask = annotations.mask_for(series, volume.image, volume.files)
        harmonized = tumour_slices(volume.image, series.plane, hcfg, mask)
    except hz.SeriesError as err:
        exam.reasons[series.uid] = str(err)
        return [], []
    used.warnings[series.uid] = warnings
    used.volume_slices[series.uid] = volume.image.GetSize()[2]
    used.volume[series.uid] = volume.label
    used.trace[series.uid] = volume.trace
    _exclude_other_volumes(volumes, volume)
    fractions = harmonized.mask.mean(axis=(1, 2))
    keep = np.flatnonzero(fractions >= hcfg["min_tumour_fraction"])
    used.tumour_slices[series.uid] = len(keep)
    if len(keep) == 0:
        exam.reasons[series.uid] = "mask has no slice above min_tumour_fraction"
        return [], []
    skey = series_key(secret, series.uid)
    slice_rows = _slice_rows(case, sequence, series, skey, harmonized, fractions, keep)
    if settings.wide_fov_mm is None:
        return slice_rows, []
    wide = wide_slices(volume.image, series.plane, hcfg, settings.wide_fov_mm, mask)
    return slice_rows, _wide_rows(case, sequence, skey, wide, keep)


def ingest_patient(
    patient_dir: Path,
    masks_dir: Path,
    *,
    case: Mapping,
    settings: IngestSettings,
    rules: list[dict],
    secret: bytes,
    ranges: list[dict] | None = None,
) -> IngestResult:
    """Return the slice table, the wide table and the QC record of one patient.

    ``case``: patient (the pseudonymous key), center, label, label_index. ``ranges``: the
    patient's rows of the tumour slice-range table, if one is used.

    Raises:
        FileNotFoundError: the patient's DICOM folder does not exist.
        AnnotationError: an annotation does not match its series' geometry.
    """
    if not patient_dir.is_dir():
        raise FileNotFoundError(
            f"patient {case['patient']}: DICOM folder not found (see the cases table)"
        )
    exam = discover_exam(patient_dir, rules, settings.sequences)
    annotations = AnnotationIndex(masks_dir, list(ranges or []))
    rows, wide, used = [], [], _Used()
    for sequence, candidates in exam.by_sequence.items():
        chosen, reasons = choose_series(candidates, annotations.source)
        exam.reasons.update(reasons)
        if chosen is not None:
            slice_rows, wide_rows = _ingest_series(
                chosen, sequence, annotations, case, settings, secret, exam, used
            )
            rows += slice_rows
            wide += wide_rows
    for s in exam.series:
        used.kinds[s.uid] = volume_kinds(s)
        for f in s.files:
            if f.status == "pending":
                f.status = "excluded" if s.uid in exam.reasons else "used"
                f.reason = exam.reasons.get(s.uid, "")
    qc = qc_record(case, patient_dir, exam, used, secret)
    return IngestResult(
        pd.DataFrame(rows) if rows else empty_slices(),
        pd.DataFrame(wide) if wide else empty_wide(),
        qc,
    )
