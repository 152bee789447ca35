"""Where voxels lie in the patient: the canonical grids of each plane and resampling onto them.

Volumes follow SimpleITK's convention: physical points in LPS millimetres, index order (x, y, z)
= (column, row, slice), direction columns = (row direction, column direction, slice normal).
Kept apart from :mod:`gynmri.preprocessing.harmonize` (which reads DICOM volumes) so that the
network jobs that carry a tumour between series need SimpleITK and numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

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


@dataclass(frozen=True)
class Grid:
    """An output voxel grid: origin, spacing and direction in LPS, size in voxels (x, y, z)."""

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: np.ndarray
    size: tuple[int, int, int]


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


def slice_centers(grid: Grid) -> np.ndarray:
    """Return the LPS point (mm) at the centre of each slice of ``grid`` (n_slices, 3): with the
    plane and the pixel spacing, what places a wide slice in the patient (see
    :mod:`gynmri.localise.carry`)."""
    half = (np.array(grid.size[:2], float) - 1) / 2 * np.array(grid.spacing[:2])
    first = np.array(grid.origin) + grid.direction[:, :2] @ half
    return first + np.outer(grid.spacing[2] * np.arange(grid.size[2]), grid.direction[:, 2])
