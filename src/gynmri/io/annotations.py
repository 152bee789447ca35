"""Tumour annotations: masks (NIfTI/NRRD/MHA), DICOM SEG, or tables of tumour slice ranges.

Every kind is turned into a uint8 mask on the voxel grid of the series volume it annotates, so
that harmonization treats them alike. A mask is matched to its series by SeriesInstanceUID
(file name or SEG reference) and then checked by geometry; a mismatch is an error naming both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from gynmri.io.dicom import FileRecord, Series, list_files

MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


class AnnotationError(ValueError):
    """An annotation does not fit the series it names."""


@dataclass
class AnnotationIndex:
    """The annotations available for one patient: mask files, SEG objects, slice ranges.

    Args:
        masks_dir: the patient's annotation folder (may be missing).
        ranges: rows of the slice-range table for this patient, each with ``series`` (a
            SeriesNumber or a SeriesInstanceUID), ``first`` and ``last`` (InstanceNumbers, inclusive).
    """

    masks_dir: Path
    ranges: list[dict] = field(default_factory=list)
    _seg: dict[str, Path] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if not self.masks_dir.is_dir():
            return
        for path in list_files(self.masks_dir):
            if path.name.endswith(MASK_SUFFIXES) or path.suffix in (".tsv", ".csv", ".json"):
                continue
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception:  # not DICOM: ignore here, masks_dir is not an input to account for
                continue
            if ds.get("SOPClassUID") == SEG_SOP_CLASS:
                for ref in ds.get("ReferencedSeriesSequence", []):
                    self._seg[str(ref.SeriesInstanceUID)] = path

    def mask_file(self, uid: str) -> Path | None:
        """Return the mask file named after a SeriesInstanceUID, or None."""
        for suffix in MASK_SUFFIXES:
            path = self.masks_dir / f"{uid}{suffix}"
            if path.is_file():
                return path
        return None

    def _range(self, series: Series) -> dict | None:
        for row in self.ranges:
            if str(row["series"]) in (series.uid, str(series.number)):
                return row
        return None

    def source(self, series: Series) -> str | None:
        """Return what annotates the series ('mask', 'seg', 'slice range') or None."""
        if self.mask_file(series.uid):
            return "mask"
        if series.uid in self._seg:
            return "seg"
        if self._range(series):
            return "slice range"
        return None

    def mask_for(self, series: Series, image: sitk.Image, files: list[FileRecord]) -> sitk.Image:
        """Return the tumour mask of ``series`` on the grid of ``image`` (built from ``files``).

        Raises:
            AnnotationError: the annotation does not fit the series (names both).
        """
        what = f"series {series.number} '{series.description}'"
        path = self.mask_file(series.uid)
        if path:
            mask = sitk.ReadImage(str(path), sitk.sitkUInt8)
            check_geometry(mask, image, f"{what}: mask {path.name}")
            return mask
        if len(files) != image.GetSize()[2]:
            raise AnnotationError(
                f"{what}: SEG and slice-range annotations need one file per slice "
                "(mosaic or multi-frame series: give a NIfTI mask)"
            )
        slices = slice_index_of(files, image)
        mask = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
        if series.uid in self._seg:
            frames = seg_frames(
                self._seg[series.uid], [str(f.header.SOPInstanceUID) for f in files]
            )
            for sop, frame in frames.items():
                z = slices[sop]
                if frame.shape != mask.shape[1:]:
                    raise AnnotationError(
                        f"{what}: SEG {self._seg[series.uid].name} frame "
                        f"{frame.shape} vs image {mask.shape[1:]}"
                    )
                mask[z] |= frame > 0
        else:
            row = self._range(series)
            first, last = int(row["first"]), int(row["last"])
            numbers = {
                str(f.header.SOPInstanceUID): int(f.header.get("InstanceNumber") or -1)
                for f in files
            }
            hit = [slices[sop] for sop, n in numbers.items() if first <= n <= last]
            if not hit:
                raise AnnotationError(
                    f"{what}: slice range {first}-{last} matches no InstanceNumber"
                )
            mask[hit] = 1
        out = sitk.GetImageFromArray(mask)
        out.CopyInformation(image)
        return out


def slice_index_of(files: list[FileRecord], image: sitk.Image) -> dict[str, int]:
    """Return SOPInstanceUID -> slice index in ``image``, from each file's position."""
    out = {}
    for f in files:
        point = [float(v) for v in f.header.ImagePositionPatient]
        index = image.TransformPhysicalPointToContinuousIndex(point)
        out[str(f.header.SOPInstanceUID)] = int(round(index[2]))
    return out


def seg_frames(path: Path, sop_uids: list[str]) -> dict[str, np.ndarray]:
    """Return the SEG's combined segment pixels for each referenced source instance."""
    import highdicom as hd  # imported here: only cohorts with SEG annotations need it

    seg = hd.seg.segread(path)
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    wanted = [u for u in sop_uids if u in referenced]
    if not wanted:
        raise AnnotationError(f"SEG {path.name} references none of the series' instances")
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=wanted, combine_segments=True, skip_overlap_checks=True
    )
    return dict(zip(wanted, pixels, strict=True))


def check_geometry(mask: sitk.Image, image: sitk.Image, what: str) -> None:
    """Raise AnnotationError naming ``what`` when the mask is not on the image's voxel grid."""
    problems = []
    if mask.GetSize() != image.GetSize():
        problems.append(f"size {mask.GetSize()} vs {image.GetSize()}")
    if not np.allclose(mask.GetSpacing(), image.GetSpacing(), atol=1e-3, rtol=1e-3):
        problems.append(f"spacing {mask.GetSpacing()} vs {image.GetSpacing()}")
    if not np.allclose(mask.GetOrigin(), image.GetOrigin(), atol=0.05):
        problems.append(f"origin {mask.GetOrigin()} vs {image.GetOrigin()}")
    if not np.allclose(mask.GetDirection(), image.GetDirection(), atol=1e-3):
        problems.append("direction differs")
    if problems:
        raise AnnotationError(f"{what}: does not match the series geometry: {'; '.join(problems)}")
