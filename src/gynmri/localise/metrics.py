"""Per-patient scores of the tumour localiser against the annotated masks.

Voxel overlap (Dice), boundary agreement (HD95, in mm), slice selection (counts, sensitivity,
specificity, Jaccard over slices) and the crop centre's error (mm). Slice counts and rates come
from :mod:`gynmri.evaluation.confusion`, so they follow the pipeline's one rule for empty
classes: a rate whose denominator is zero is NaN, never 0 or 1.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gynmri.evaluation.confusion import counts, jaccard, rates


def dice(pred: np.ndarray, true: np.ndarray) -> float:
    """Return the Dice overlap of two bool masks of one shape; 1.0 when both are empty."""
    pred, true = same_shape(pred, true)
    total = int(pred.sum()) + int(true.sum())
    if total == 0:
        return 1.0  # nothing predicted where nothing is: perfect agreement
    return 2.0 * int((pred & true).sum()) / total


def surface(mask: np.ndarray) -> np.ndarray:
    """Return the mask's surface: its pixels that its binary erosion removes.

    Erosion with the face-connected structure and a zero border, so a mask touching the image
    edge has a surface there and a mask one pixel (or one slice) thick is all surface.
    """
    return mask & ~ndimage.binary_erosion(mask)


def hd95(pred: np.ndarray, true: np.ndarray, spacing: tuple[float, ...]) -> float:
    """Return the 95th percentile of the symmetric surface distances of two masks, in mm.

    The distances from each surface pixel of one mask to the nearest surface pixel of the other,
    both directions pooled (as MedPy's ``hd95``); ``spacing`` is the pixel size per axis, e.g.
    (slice_mm, px_mm, px_mm) for (S, H, W). NaN when either mask is empty.
    """
    pred, true = same_shape(pred, true)
    if len(spacing) != pred.ndim:
        raise ValueError(f"spacing {spacing} does not match masks of {pred.ndim} dimensions")
    if not pred.any() or not true.any():
        return float("nan")
    surf_pred, surf_true = surface(pred), surface(true)
    # Distance of every pixel to the other mask's nearest surface pixel, read on this surface.
    to_true = ndimage.distance_transform_edt(~surf_true, sampling=spacing)[surf_pred]
    to_pred = ndimage.distance_transform_edt(~surf_pred, sampling=spacing)[surf_true]
    return float(np.percentile(np.concatenate([to_true, to_pred]), 95))


def slice_scores(selected: np.ndarray, annotated: np.ndarray) -> dict:
    """Return tp, fp, fn, tn, sensitivity, specificity and Jaccard of selected vs annotated
    slices (both (S,) bool; see :attr:`Localisation.chosen_mask`); NaN rates where undefined."""
    selected, annotated = same_shape(selected, annotated)
    c = counts(annotated, selected)
    r = rates(c)
    return {
        "tp": c["tp"],
        "fp": c["fp"],
        "fn": c["fn"],
        "tn": c["tn"],
        "sensitivity": r["sensitivity"],
        "specificity": r["specificity"],
        "jaccard": jaccard(c),
    }


def center_error_mm(center_rc: np.ndarray, true_mask: np.ndarray, mm_per_px: float) -> float:
    """Return the in-plane distance (mm) from ``center_rc`` (row, col; wide pixels) to the
    centroid of all annotated pixels of ``true_mask`` ((S, H, W) or (H, W) bool); NaN if empty."""
    true_mask = np.asarray(true_mask)
    if true_mask.dtype != bool or true_mask.ndim < 2:
        raise ValueError(
            f"expected a bool mask (..., H, W), got {true_mask.dtype} {true_mask.shape}"
        )
    if not true_mask.any():
        return float("nan")
    idx = np.nonzero(true_mask)
    true_rc = np.array([idx[-2].mean(), idx[-1].mean()])
    return float(np.hypot(*(np.asarray(center_rc, float) - true_rc)) * mm_per_px)


def same_shape(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return two bool arrays of one shape; raise ValueError otherwise.

    Bool only: an index array (e.g. ``Localisation.chosen``) read as a mask would be silently
    wrong, so it is refused rather than converted.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != bool or b.dtype != bool:
        raise ValueError(f"expected bool masks, got {a.dtype} and {b.dtype}")
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    return a, b
