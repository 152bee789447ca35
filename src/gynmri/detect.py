"""Tumour-slice detection without annotation: a tile classifier on wide, volume-centred slices.

At ingest every slice of a used series is also resampled onto a *wide* grid centred on the
series (no annotation needed), with the pixel spacing of the classifier's slices; so a
``size`` x ``size`` window of a wide slice is exactly what the classifier sees. The detector
(the same MobileNetV2 family, two classes: no tumour / tumour) scores such windows ("tiles") on
a regular ``tiles`` x ``tiles`` grid of each wide slice; a tile is tumour when the central
half of the window holds at least ``min_fraction`` tumour. For a new exam:

1. every slice's tumour score is its best tile's probability; slices scoring at least
   ``threshold`` are selected (the best slice when none does, so an exam always gets a call);
2. the tumour centre is the probability-weighted mean of the selected slices' tile centres;
3. the selected slices are cropped around that centre and handed to the classifiers.

Used by ``gynmri predict`` and by the workflow's automatic-selection evaluation, so both follow
exactly the same steps.
"""

from __future__ import annotations

import numpy as np

#: Detector classes, in output order.
DETECTOR_CLASSES = ["no_tumour", "tumour"]


def wide_size(size: int, fov_mm: float, wide_fov_mm: float) -> int:
    """Return the wide grid's size in pixels: ``wide_fov_mm`` at the classifier's pixel spacing."""
    n = int(round(size * wide_fov_mm / fov_mm))
    if n < size:
        raise ValueError(f"detect/fov_mm {wide_fov_mm} is smaller than harmonize/fov_mm {fov_mm}")
    return n


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
    """Return (S, tiles, tiles) booleans: the central half of the window is tumour enough."""
    q = crop // 4
    centre = tiles_of(masks.astype(np.float32), crop, tiles)[..., q : crop - q, q : crop - q]
    return centre.mean(axis=(-1, -2)) >= min_fraction


def training_set(images: np.ndarray, masks: np.ndarray, crop: int, tiles: int,
                 min_fraction: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Return (windows (N, crop, crop), labels 0/1) of every tile of the slices, for training."""
    windows = tiles_of(images, crop, tiles).reshape(-1, crop, crop)
    labels = tile_labels(masks, crop, tiles, min_fraction).reshape(-1).astype(np.int32)
    return windows, labels


def tile_centres(wide: int, crop: int, tiles: int) -> np.ndarray:
    """Return the (row or column) pixel coordinate of each tile's centre along one axis."""
    return tile_offsets(wide, crop, tiles) + (crop - 1) / 2


def select(
    scores: np.ndarray, threshold: float, wide: int, crop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (selected slice indices, tumour centre (row, col) in wide pixels).

    ``scores``: (S, tiles, tiles) tumour probabilities of one series' tiles.
    """
    if scores.ndim != 3 or not len(scores):
        raise ValueError("no slice to select from")
    per_slice = scores.max(axis=(1, 2))
    chosen = np.flatnonzero(per_slice >= threshold)
    if not len(chosen):
        chosen = np.array([int(per_slice.argmax())])
    centres = tile_centres(wide, crop, scores.shape[1])
    weights = scores[chosen] ** 2  # squared: the confident tiles dominate the estimate
    total = weights.sum()
    if total <= 0:
        return chosen, np.array([(wide - 1) / 2, (wide - 1) / 2])
    row = (weights.sum(axis=(0, 2)) @ centres) / total
    col = (weights.sum(axis=(0, 1)) @ centres) / total
    return chosen, np.array([row, col])


def crop_at(images: np.ndarray, centre: np.ndarray, crop: int) -> np.ndarray:
    """Return the ``crop`` x ``crop`` windows of slices (S, W, W) centred on ``centre`` (row, col),
    shifted inside the slice where the centre lies near its edge."""
    wide = images.shape[-1]
    top = np.clip(np.round(centre - (crop - 1) / 2).astype(int), 0, wide - crop)
    return images[:, top[0] : top[0] + crop, top[1] : top[1] + crop]


def slice_metrics(truth: np.ndarray, selected: np.ndarray) -> dict:
    """Return slice-level sensitivity, specificity and Jaccard overlap of selected vs true slices."""
    truth, selected = np.asarray(truth, bool), np.asarray(selected, bool)
    tp, fn = int((truth & selected).sum()), int((truth & ~selected).sum())
    fp, tn = int((~truth & selected).sum()), int((~truth & ~selected).sum())
    union = tp + fp + fn
    return {
        "slices": len(truth), "tumour_slices": int(truth.sum()), "selected": int(selected.sum()),
        "sensitivity": tp / (tp + fn) if tp + fn else np.nan,
        "specificity": tn / (tn + fp) if tn + fp else np.nan,
        "jaccard": tp / union if union else np.nan,
    }  # fmt: skip
