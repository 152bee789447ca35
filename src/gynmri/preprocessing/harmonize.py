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

# Canonical direction matrices (columns: image x axis, image y axis, slice axis) in LPS, i.e.
# the radiological display of each plane: axial seen from the feet, sagittal with anterior on
# the left, coronal seen from the front; head at the top of sagittal and coronal images.
CANONICAL = {
    "axial": np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], float).T,
    "sagittal": np.array([[0, 1, 0], [0, 0, -1], [1, 0, 0]], float).T,
    "coronal": np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float).T,
}


def plane_of(direction: np.ndarray) -> str:
    """Return the name of a canonical direction matrix (the plane of a canonical grid)."""
    for name, canonical in CANONICAL.items():
        if np.array_equal(canonical, direction):
            return name
    raise ValueError("not a canonical direction matrix")


def center_of(image: sitk.Image, mask: sitk.Image | None) -> np.ndarray:
    """Return the physical center of the mask's foreground, or of the image when there is none."""
    if mask is not None:
        idx = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
        if len(idx):
            zyx = idx.mean(axis=0)
            return np.array(image.TransformContinuousIndexToPhysicalPoint(tuple(zyx[::-1])))
    size = np.array(image.GetSize(), float)
    return np.array(image.TransformContinuousIndexToPhysicalPoint(tuple((size - 1) / 2)))


@dataclass(frozen=True)
class Grid:
    """An output voxel grid: origin, spacing and direction in LPS, size in voxels (x, y, z)."""

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: np.ndarray
    size: tuple[int, int, int]


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


def resample(
    image: sitk.Image, grid: Grid, interpolator=sitk.sitkLinear, fill: float = 0.0
) -> sitk.Image:
    """Return ``image`` resampled onto ``grid``; points outside the input get ``fill``."""
    return sitk.Resample(
        image,
        grid.size,
        sitk.Transform(),
        interpolator,
        grid.origin,
        grid.spacing,
        tuple(grid.direction.ravel()),
        fill,
        image.GetPixelID(),
    )


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


def slice_centers(grid: Grid) -> np.ndarray:
    """Return the LPS point (mm) at the centre of each slice of ``grid`` (n_slices, 3): with the
    plane and the pixel spacing, what places a wide slice in the patient (see
    :mod:`gynmri.localise.carry`)."""
    half = (np.array(grid.size[:2], float) - 1) / 2 * np.array(grid.spacing[:2])
    first = np.array(grid.origin) + grid.direction[:, :2] @ half
    return first + np.outer(grid.spacing[2] * np.arange(grid.size[2]), grid.direction[:, 2])


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
