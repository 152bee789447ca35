"""Carrying a tumour between series by patient coordinates (gynmri.localise.carry)."""

import numpy as np
import pandas as pd
import pytest

from gynmri.localise.carry import CENTER_COLUMNS, carry, grid_of
from gynmri.preprocessing.grid import CANONICAL, Grid, slice_centers


def wide_rows(grid: Grid, plane: str) -> pd.DataFrame:
    """Return the geometry columns of a series' wide rows on ``grid`` (as ingest writes them)."""
    centers = slice_centers(grid)
    n = grid.size[0]
    rows = pd.DataFrame(centers, columns=CENTER_COLUMNS)
    rows["slice_index"] = np.arange(len(rows))
    rows["plane"], rows["pixel_mm"], rows["height"], rows["width"] = plane, grid.spacing[0], n, n
    return rows.sample(frac=1.0, random_state=0)  # any row order: slices are sorted by index


def make_grid(plane: str, center, n: int, step: float, slices: int, spacing: float) -> Grid:
    direction = CANONICAL[plane]
    half = step * (n - 1) / 2
    first = np.asarray(center, float) - half * direction[:, 0] - half * direction[:, 1]
    origin = first - spacing * (slices - 1) / 2 * direction[:, 2]
    return Grid(tuple(origin), (step, step, spacing), direction, (n, n, slices))


def world_points(grid: Grid, mask: np.ndarray) -> np.ndarray:
    """Return the LPS points of a (S, H, W) mask's pixels on ``grid``."""
    k, r, c = np.nonzero(mask)
    idx = np.stack([c, r, k], axis=1) * np.array(grid.spacing)
    return np.array(grid.origin) + idx @ grid.direction.T


def test_grid_of_rebuilds_the_grid_from_the_wide_columns():
    grid = make_grid("sagittal", (10.0, -30.0, 55.0), 24, 2.5, 9, 4.0)
    back = grid_of(wide_rows(grid, "sagittal"))
    np.testing.assert_allclose(back.origin, grid.origin, atol=1e-9)
    np.testing.assert_allclose(back.spacing, grid.spacing)
    np.testing.assert_array_equal(back.direction, grid.direction)
    assert back.size == grid.size


def test_a_tumour_stays_where_it_is_in_the_patient_across_planes():
    """A ball found on an axial series lands at the same LPS place on a sagittal series with
    other spacing, slice thickness and centre."""
    axial = make_grid("axial", (0.0, 0.0, 0.0), 40, 2.0, 20, 3.0)
    sagittal = make_grid("sagittal", (6.0, -4.0, 5.0), 32, 2.5, 16, 4.0)
    k, r, c = np.meshgrid(np.arange(20), np.arange(40), np.arange(40), indexing="ij")
    world = np.array(axial.origin) + np.stack([c * 2.0, r * 2.0, k * 3.0], -1) @ axial.direction.T
    ball_center = np.array([8.0, -6.0, 10.0])
    ball = (np.linalg.norm(world - ball_center, axis=-1) <= 12.0).astype(np.float32)

    carried = carry(ball, axial, sagittal)

    assert carried.shape == (16, 32, 32)
    found = carried >= 0.5
    np.testing.assert_allclose(world_points(sagittal, found).mean(axis=0), ball_center, atol=1.5)
    # the carried ball's volume matches (voxel volumes differ: 12 vs 25 mm^3)
    assert found.sum() * 25.0 == pytest.approx(ball.sum() * 12.0, rel=0.15)
    # the sagittal slices it covers are those within its radius of its centre in x (L-R), give
    # or take one axial pixel (2 mm) of the ball's outline on the axial grid
    distance = np.abs(slice_centers(sagittal)[:, 0] - ball_center[0])
    covered = set(np.flatnonzero(found.any(axis=(1, 2))))
    assert set(np.flatnonzero(distance < 10.0)) <= covered <= set(np.flatnonzero(distance < 14.0))


def test_points_outside_the_source_volume_get_zero():
    axial = make_grid("axial", (0.0, 0.0, 0.0), 16, 2.0, 4, 3.0)
    far = make_grid("axial", (0.0, 0.0, 200.0), 16, 2.0, 4, 3.0)
    assert not carry(np.ones((4, 16, 16), np.float32), axial, far).any()


def test_bad_geometry_is_refused():
    grid = make_grid("axial", (0.0, 0.0, 0.0), 8, 2.0, 5, 3.0)
    rows = wide_rows(grid, "axial")
    uneven = rows.copy()
    uneven.loc[uneven["slice_index"] == 4, "center_z_mm"] += 1.0
    with pytest.raises(ValueError, match="evenly spaced"):
        grid_of(uneven)
    mixed = rows.copy()
    mixed.loc[mixed["slice_index"] == 0, "plane"] = "sagittal"
    with pytest.raises(ValueError, match="one canonical plane"):
        grid_of(mixed)
    with pytest.raises(ValueError, match="do not match the source grid"):
        carry(np.zeros((4, 8, 8)), grid, grid)
