"""DICOM discovery: read headers of every file in a patient's folder and group them into series.

No folder layout is assumed: every file under the folder is tried. A file that cannot be used is
kept with the reason, so that the QC manifest accounts for every input file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

# Header fields read during discovery; reading only these keeps discovery fast.
_HEADER_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription",
    "ProtocolName", "ImageType", "Modality", "Manufacturer", "ManufacturerModelName",
    "MagneticFieldStrength", "ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing",
    "SliceThickness", "Rows", "Columns", "InstanceNumber", "DiffusionBValue",
    "RescaleSlope", "RescaleIntercept", "NumberOfFrames",
]  # fmt: skip

# Vendor private tags that hold the diffusion b-value when the standard tag is absent.
_VENDOR_BVALUE_TAGS = [(0x0043, 0x1039), (0x0019, 0x100C), (0x2001, 0x1003)]
_HEADER_TAGS += [pydicom.tag.Tag(*t) for t in _VENDOR_BVALUE_TAGS]


@dataclass
class FileRecord:
    """One input file: where it is and what became of it."""

    path: Path
    status: str = "pending"  # used | excluded | pending
    reason: str = ""
    series_uid: str | None = None
    header: pydicom.Dataset | None = field(default=None, repr=False)


@dataclass
class Series:
    """The files of one SeriesInstanceUID and the header facts that name and harmonise it."""

    uid: str
    files: list[FileRecord]
    number: int
    description: str
    protocol: str
    image_type: str
    manufacturer: str
    model: str
    field_strength: float
    orientation: np.ndarray | None  # 6 direction cosines (row, column) or None
    plane: str  # axial | sagittal | coronal | oblique | unknown
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    matrix: tuple[int, int] | None
    bvalues: list[float]

    @property
    def text(self) -> str:
        """Return description and protocol joined, as matched by the naming rules."""
        return f"{self.description} {self.protocol}".strip()


def list_files(folder: Path) -> list[Path]:
    """Return every regular file under ``folder``, sorted, hidden files included."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        out.extend(Path(root) / f for f in sorted(files))
    return out


def bvalue(ds: pydicom.Dataset) -> float | None:
    """Return the diffusion b-value from the standard or a vendor tag, or None."""
    value = ds.get("DiffusionBValue")
    if value is None:
        for tag in _VENDOR_BVALUE_TAGS:
            if tag in ds:
                raw = ds[tag].value
                try:
                    # GE stores "b\8\0\0" style multi-values; the first is the b-value.
                    value = (
                        raw[0]
                        if isinstance(raw, list | tuple | pydicom.multival.MultiValue)
                        else raw
                    )
                    value = float(value) % 1e9 if value is not None else None
                except (TypeError, ValueError):
                    value = None
                break
    return float(value) if value is not None else None


def plane_of(orientation: np.ndarray | None, tolerance_deg: float = 30.0) -> str:
    """Return the anatomical plane of a slice orientation (axial/sagittal/coronal/oblique)."""
    if orientation is None or len(orientation) != 6:
        return "unknown"
    normal = np.cross(orientation[:3], orientation[3:])
    norm = np.linalg.norm(normal)
    if norm == 0:
        return "unknown"
    normal = np.abs(normal / norm)
    axis = int(np.argmax(normal))
    if np.degrees(np.arccos(min(1.0, normal[axis]))) > tolerance_deg:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def read_header(path: Path) -> FileRecord:
    """Return a FileRecord with the header read, or excluded with the reason it cannot be used."""
    rec = FileRecord(path=path)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except InvalidDicomError:
        rec.status, rec.reason = "excluded", "not DICOM"
        return rec
    except Exception as err:  # a damaged file must be reported, never crash discovery
        rec.status, rec.reason = "excluded", f"unreadable DICOM ({type(err).__name__})"
        return rec
    if "SeriesInstanceUID" not in ds:
        rec.status, rec.reason = "excluded", "not an image (no SeriesInstanceUID)"
    elif "Rows" not in ds:
        rec.status, rec.reason = "excluded", "not an image (no Rows)"
    elif ds.get("Modality", "MR") != "MR":
        rec.status, rec.reason = "excluded", f"not MR (modality {ds.get('Modality')})"
    else:
        # Pixels are read later, for used series only.
        rec.series_uid = str(ds.SeriesInstanceUID)
        rec.header = ds
    return rec


def _series_from(uid: str, files: list[FileRecord]) -> Series:
    first = files[0].header
    iop = first.get("ImageOrientationPatient")
    orientation = np.array([float(v) for v in iop]) if iop is not None else None
    spacing = first.get("PixelSpacing")
    bvals = sorted({b for f in files if (b := bvalue(f.header)) is not None})
    return Series(
        uid=uid,
        files=files,
        number=int(first.get("SeriesNumber") or 0),
        description=str(first.get("SeriesDescription", "")),
        protocol=str(first.get("ProtocolName", "")),
        image_type="\\".join(str(v) for v in (first.get("ImageType") or [])),
        manufacturer=str(first.get("Manufacturer", "")),
        model=str(first.get("ManufacturerModelName", "")),
        field_strength=float(first.get("MagneticFieldStrength") or 0.0),
        orientation=orientation,
        plane=plane_of(orientation),
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing else None,
        slice_thickness=float(first.get("SliceThickness") or 0.0) or None,
        matrix=(int(first.Rows), int(first.Columns)),
        bvalues=bvals,
    )


def discover(folder: Path) -> tuple[list[FileRecord], list[Series]]:
    """Return every file under ``folder`` and the series its DICOM images form.

    Files that are not usable DICOM images, and repeated SOPInstanceUIDs, are marked excluded
    with a reason. Series are sorted by SeriesNumber.
    """
    records = [read_header(p) for p in list_files(folder)]
    by_series: dict[str, list[FileRecord]] = {}
    seen_sop: set[str] = set()
    for rec in records:
        if rec.header is None:
            continue
        sop = str(rec.header.get("SOPInstanceUID", ""))
        if sop and sop in seen_sop:
            rec.status, rec.reason = "excluded", "duplicate instance (same SOPInstanceUID)"
            continue
        seen_sop.add(sop)
        by_series.setdefault(rec.series_uid, []).append(rec)
    series = [_series_from(uid, files) for uid, files in by_series.items()]
    series.sort(key=lambda s: (s.number, s.description))
    return records, series
