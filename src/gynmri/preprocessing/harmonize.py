"""Harmonization: SimpleITK volume -> canonical, resampled, normalized slices.

Series are stacked into volumes by :mod:`gynmri.io.volumes`; :func:`harmonize_volume` is the
one resampling path of the tumour slices (training), the wide slices (the detector) and
``gynmri predict`` (a new exam).

Volumes follow SimpleITK's convention: physical points in LPS millimetres, index order (x, y, z)
= (column, row, slice), direction columns = (row direction, column direction, slice normal).
Slices are ordered by their position along the normal, never by InstanceNumber or file name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from gynmri.io.volumes import SeriesError
from gynmri.preprocessing.grid import CANONICAL, Grid, resample


def center_of(image: sitk.Image, mask: sitk.Image | None) -> np.ndarray:
    """Return the physical center of the mask's foreground, or of the image when there is none."""
    if mask is not None:
        idx = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
        if len(idx):
            zyx = idx.mean(axis=0)
            return np.array(image.TransformContinuousIndexToPhysicalPoint(tuple(zyx[::-1])))
    size = np.array(image.GetSize(), float)
    return np.array(image.TransformContinuousIndexToPhysicalPoint(tuple((size - 1) / 2)))


def canonical_grid(
    image: sitk.Image, plane: str, size: int, fov_mm: float, center: np.ndarray
) -> Grid:
    """Return the canonical output grid for a volume.

    In plane: ``size`` x ``size`` pixels over ``fov_mm``, centered on ``center``. Across: the
    input's slice positions along the canonical slice axis, so slices are never interpolated.
    """
    direction = CANONICAL.get(plane, CANONICAL["axial"])
    step = fov_mm / size
    spacing_z = image.GetSpacing()[2]
    ends = [
        np.array(image.TransformIndexToPhysicalPoint((0, 0, k))) @ direction[:, 2]
        for k in (0, image.GetSize()[2] - 1)
    ]
    lo, hi = min(ends), max(ends)
    n_slices = int(round((hi - lo) / spacing_z)) + 1
    half = step * (size - 1) / 2
    origin = center - half * direction[:, 0] - half * direction[:, 1]
    origin = origin + (lo - center @ direction[:, 2]) * direction[:, 2]
    return Grid(tuple(origin), (step, step, spacing_z), direction, (size, size, n_slices))


def normalize(
    values: np.ndarray, reference: np.ndarray, method: str, clip_percentiles
) -> np.ndarray:
    """Return ``values`` clipped at the reference's percentiles and scaled (z-score or min-max).

    The statistics come from ``reference`` (the whole original series), so that the crop of
    the field of view does not change the scale.
    """
    lo, hi = np.percentile(reference, clip_percentiles)
    if hi <= lo:
        raise SeriesError("constant intensity series")
    ref = np.clip(reference, lo, hi)
    out = np.clip(values, lo, hi)
    if method == "minmax":
        return (out - lo) / (hi - lo)
    return (out - ref.mean()) / max(float(ref.std()), 1e-6)


@dataclass(frozen=True)
class Harmonized:
    """One volume on a canonical grid."""

    values: np.ndarray  # (slices, size, size) float, normalized
    mask: np.ndarray | None  # (slices, size, size) bool, when a mask was given
    positions: np.ndarray  # position of each slice along the canonical normal (mm)
    grid: Grid  # where the values lie in patient coordinates


def harmonize_volume(
    image: sitk.Image,
    plane: str,
    size: int,
    fov_mm: float,
    center: np.ndarray,
    harmonize: dict,
    mask: sitk.Image | None = None,
) -> Harmonized:
    """Return ``image`` (and ``mask``) resampled onto the canonical grid of ``plane``: ``size``
    x ``size`` pixels over ``fov_mm`` centered on ``center``, normalized with the config
    section ``harmonize`` (clip_percentiles, normalize) from the whole original series."""
    grid = canonical_grid(image, plane, size, fov_mm, center)
    reference = sitk.GetArrayViewFromImage(image)
    low = float(np.percentile(reference, harmonize["clip_percentiles"][0]))
    resampled = sitk.GetArrayFromImage(resample(image, grid, fill=low))
    values = normalize(
        resampled, np.asarray(reference), harmonize["normalize"], harmonize["clip_percentiles"]
    )
    on_grid = None
    if mask is not None:
        on_grid = sitk.GetArrayFromImage(resample(mask, grid, sitk.sitkNearestNeighbor)) > 0
    positions = np.array(grid.origin) @ grid.direction[:, 2] + grid.spacing[2] * np.arange(
        grid.size[2]
    )
    return Harmonized(values, on_grid, positions, grid)


def wide_size(size: int, fov_mm: float, wide_fov_mm: float) -> int:
    """Return the wide grid's size in pixels: ``wide_fov_mm`` at the classifier's pixel spacing."""
    n = int(round(size * wide_fov_mm / fov_mm))
    if n < size:
        raise ValueError(f"detect/fov_mm {wide_fov_mm} is smaller than harmonize/fov_mm {fov_mm}")
    return n
