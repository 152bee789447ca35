"""Carry a tumour found on one series to another series of the same exam, by patient coordinates.

A tumour is one 3-D object in the patient. Once a localiser has found it on the sequence where
it shows best (the *guide*, e.g. T2-weighted axial), the exam's other series can be read at the
same place, as radiologists read DWI beside T2 (config ``detect.guide``). The wide tables record
where each slice lies (plane, pixel spacing, slice centre in LPS millimetres), so the guide's
tumour probabilities are resampled (linearly) onto the other series' wide grid; points outside
the guide's volume get probability 0. The series of one exam share the scanner's frame of
reference; patient motion between series is not corrected (a few millimetres at most in a
single sitting, well inside one thick slice).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

from gynmri.preprocessing.grid import CANONICAL, Grid, resample

#: The wide-table columns that place a slice in the patient.
CENTER_COLUMNS = ["center_x_mm", "center_y_mm", "center_z_mm"]


def grid_of(series: pd.DataFrame) -> Grid:
    """Return the wide grid of one series' wide rows (every slice of the series).

    Raises ValueError when the rows do not describe one regular grid (slices missing, mixed
    planes, unequal spacing): carrying a tumour onto a wrong grid would misplace it silently.
    """
    rows = series.sort_values("slice_index")
    planes = rows["plane"].unique()
    if len(planes) != 1 or planes[0] not in CANONICAL:
        raise ValueError(f"wide rows of one series expected, with one canonical plane: {planes}")
    if (rows["height"] != rows["width"]).any() or rows["width"].nunique() != 1:
        raise ValueError("wide slices of one series must all be square and of one size")
    direction = CANONICAL[planes[0]]
    centers = rows[CENTER_COLUMNS].to_numpy(np.float64)
    n, step = int(rows["width"].iloc[0]), float(rows["pixel_mm"].iloc[0])
    along = centers @ direction[:, 2]
    spacing = float(along[1] - along[0]) if len(along) > 1 else 1.0
    if len(along) > 1 and (spacing <= 0 or not np.allclose(np.diff(along), spacing, atol=1e-3)):
        raise ValueError("the series' wide slices are not evenly spaced along its normal")
    half = step * (n - 1) / 2
    origin = centers[0] - half * direction[:, 0] - half * direction[:, 1]
    return Grid(tuple(origin), (step, step, spacing), direction, (n, n, len(rows)))


def carry(values: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """Return ``values`` (S, H, W) on the ``source`` grid resampled linearly onto ``target``
    (S', H', W'), 0 outside the source volume."""
    values = np.asarray(values, np.float32)
    if values.shape != tuple(source.size[::-1]):
        raise ValueError(f"values {values.shape} do not match the source grid {source.size[::-1]}")
    image = sitk.GetImageFromArray(values)
    image.SetOrigin(source.origin)
    image.SetSpacing(source.spacing)
    image.SetDirection(tuple(source.direction.ravel()))
    return sitk.GetArrayFromImage(resample(image, target))
