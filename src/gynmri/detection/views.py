"""Tumour-slice detection without annotation: a view classifier on wide, volume-centered slices.

At ingest every slice of a used series is also resampled onto a *wide* grid centered on the
series (no annotation needed), with the pixel spacing of the classifier's slices; so a
``size`` x ``size`` window of a wide slice is exactly what the classifier sees. The detector
(the same MobileNetV2 family, two classes: no tumour / tumour) looks at two kinds of views of
size x size pixels: the whole wide slice shrunk to that size (its label: the annotation selects
the slice), and windows ("tiles") on a regular ``tiles`` x ``tiles`` grid (label: at least
``min_fraction`` of the window is tumour). For a new exam:

1. each slice's tumour probability is the detector's on its whole view, smoothed along the
   slices ([1, 2, 1] / 4: a tumour spans neighbouring slices); the slices reaching
   ``threshold`` in the run of neighbours around the most probable slice are selected (that
   slice alone when none reaches it, so an exam always gets a call);
2. the tumour center is the probability-weighted mean of the selected slices' tile centers;
3. the selected slices are cropped around that center and handed to the classifiers.

Used by ``gynmri predict`` and by the workflow's automatic-selection evaluation, so both follow
exactly the same steps.
"""

from __future__ import annotations

import numpy as np

from gynmri.evaluation.confusion import counts, jaccard, rates

#: Detector classes, in output order.
DETECTOR_CLASSES = ["no_tumour", "tumour"]


def tile_offsets(wide: int, crop: int, tiles: int) -> np.ndarray:
    """Return the top-left offsets (one axis) of ``tiles`` evenly spaced windows of ``crop``."""
    if tiles < 1:
        raise ValueError("tiles must be >= 1")
    if tiles == 1:
        return np.array([(wide - crop) // 2])
    return np.round(np.linspace(0, wide - crop, tiles)).astype(int)


def tiles_of(images: np.ndarray, crop: int, tiles: int) -> np.ndarray:
    """Return the windows of slices (S, W, W) as (S, tiles, tiles, crop, crop)."""
    offsets = tile_offsets(images.shape[-1], crop, tiles)
    return np.stack(
        [np.stack([images[:, r : r + crop, c : c + crop] for c in offsets], 1) for r in offsets], 1
    )


def tile_labels(masks: np.ndarray, crop: int, tiles: int, min_fraction: float) -> np.ndarray:
    """Return (S, tiles, tiles) booleans: at least ``min_fraction`` of the window is tumour."""
    return tiles_of(masks.astype(np.float32), crop, tiles).mean(axis=(-1, -2)) >= min_fraction


def overview(images: np.ndarray, size: int) -> np.ndarray:
    """Return whole wide slices (S, W, W) shrunk to (S, size, size) by area averaging."""
    wide = images.shape[-1]
    if wide % size == 0:
        f = wide // size
        return images.reshape(len(images), size, f, size, f).mean(axis=(2, 4))
    from scipy.ndimage import zoom

    return np.stack([zoom(im, size / wide, order=1)[:size, :size] for im in images])


def training_set(
    images: np.ndarray,
    masks: np.ndarray,
    annotated: np.ndarray,
    crop: int,
    tiles: int,
    min_fraction: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (views (N, crop, crop), labels 0/1) for training: every slice's whole view
    (label: ``annotated``), repeated ``2 * tiles`` times so that the slice decision, which
    rests on these views, gets a third of the draws,
    and every tile (label: :func:`tile_labels`)."""
    views = np.repeat(overview(images, crop), 2 * tiles, axis=0)
    view_labels = np.repeat(np.asarray(annotated, bool), 2 * tiles)
    windows = tiles_of(images, crop, tiles).reshape(-1, crop, crop)
    labels = tile_labels(masks, crop, tiles, min_fraction).reshape(-1)
    return (
        np.concatenate([views, windows]),
        np.concatenate([view_labels, labels]).astype(np.int32),
    )


def smooth(scores: np.ndarray) -> np.ndarray:
    """Return slice probabilities smoothed along the slices with a [1, 2, 1] / 4 kernel."""
    padded = np.pad(np.asarray(scores, float), 1, mode="edge")
    return (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4


def select_slices(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Return the selected slice indices from per-slice tumour probabilities (see module doc)."""
    if not len(scores):
        raise ValueError("no slice to select from")
    smoothed = smooth(scores)
    best = int(smoothed.argmax())
    above = smoothed >= threshold
    if not above[best]:
        return np.array([best])
    lo, hi = best, best
    while lo > 0 and above[lo - 1]:
        lo -= 1
    while hi < len(above) - 1 and above[hi + 1]:
        hi += 1
    return np.arange(lo, hi + 1)


def tile_centers(wide: int, crop: int, tiles: int) -> np.ndarray:
    """Return the (row or column) pixel coordinate of each tile's center along one axis."""
    return tile_offsets(wide, crop, tiles) + (crop - 1) / 2


def tumour_center(tile_scores: np.ndarray, wide: int, crop: int) -> np.ndarray:
    """Return the tumour center (row, col) in wide pixels from the selected slices' tile
    probabilities (n, tiles, tiles); the slice center when every probability is zero."""
    centers = tile_centers(wide, crop, tile_scores.shape[1])
    weights = tile_scores**2  # squared: the confident tiles dominate the estimate
    total = weights.sum()
    if total <= 0:
        return np.array([(wide - 1) / 2, (wide - 1) / 2])
    row = (weights.sum(axis=(0, 2)) @ centers) / total
    col = (weights.sum(axis=(0, 1)) @ centers) / total
    return np.array([row, col])


def crop_at(images: np.ndarray, center: np.ndarray, crop: int) -> np.ndarray:
    """Return the ``crop`` x ``crop`` windows of slices (S, W, W) centered on ``center`` (row, col),
    shifted inside the slice where the center lies near its edge."""
    wide = images.shape[-1]
    top = np.clip(np.round(center - (crop - 1) / 2).astype(int), 0, wide - crop)
    return images[:, top[0] : top[0] + crop, top[1] : top[1] + crop]


def slice_metrics(truth: np.ndarray, selected: np.ndarray) -> dict:
    """Return slice-level sensitivity, specificity and Jaccard overlap of selected vs true slices."""
    c = counts(truth, selected)
    r = rates(c)
    return {
        "slices": len(np.asarray(truth)),
        "tumour_slices": c["tp"] + c["fn"],
        "selected": c["tp"] + c["fp"],
        "sensitivity": r["sensitivity"],
        "specificity": r["specificity"],
        "jaccard": jaccard(c),
    }
