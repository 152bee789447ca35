"""From a segmentation network's tumour probability maps to the slices to classify and the centre
to crop around.

The network gives, per slice of one series, a tumour probability map on the wide grid (S, H, W).
Thresholded, it may hold the tumour and a few spurious specks; the tumour is taken to be the one
3-D connected component (slices ordered along the normal, adjacent slices connected, diagonals
included) with the largest summed probability: that favours a large, confident region over a
small bright speck or a wide faint one. The slices on which that component covers at least
``area_threshold_px`` pixels are classified, and its centroid on them is the crop centre.

The area threshold is chosen once on the training patients (:func:`choose_area_threshold`),
against the annotated tumour slices. Everything here is deterministic and vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Full connectivity in 3-D: a pixel touches its 26 neighbours, across adjacent slices too.
STRUCTURE = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class Localisation:
    """What :func:`locate` made of one series' probability maps."""

    probabilities: np.ndarray  # (S, H, W) as given
    mask: np.ndarray  # (S, H, W) bool: the kept tumour (largest 3-D component)
    area_px: np.ndarray  # (S,) pixels of `mask` per slice
    chosen: np.ndarray  # int indices of the selected slices, ascending, never empty
    center: np.ndarray  # (row, col) float, wide pixels: centroid of `mask` on the chosen slices
    found: bool  # False when no pixel reached prob_threshold (fallback used)

    @property
    def chosen_mask(self) -> np.ndarray:
        """Return the (S,) bool of the chosen slices (as :func:`metrics.slice_scores` takes)."""
        out = np.zeros(len(self.area_px), dtype=bool)
        out[self.chosen] = True
        return out


def locate(
    probabilities: np.ndarray, area_threshold_px: float, prob_threshold: float = 0.5
) -> Localisation:
    """Return the :class:`Localisation` of one series' tumour probabilities (S, H, W).

    ``chosen`` are the slices where the kept component covers >= ``area_threshold_px`` pixels
    (every slice when the threshold is <= 0), else its largest slice; when no pixel reaches
    ``prob_threshold`` see :func:`fallback`.
    """
    probs = np.asarray(probabilities)
    if probs.ndim != 3 or probs.shape[0] == 0:
        raise ValueError(f"expected probabilities (S, H, W) with S >= 1, got {probs.shape}")
    if not np.isfinite(probs).all():
        raise ValueError("probabilities hold NaN or infinite values")
    binary = probs >= prob_threshold
    if not binary.any():
        return fallback(probs)
    labels, n = ndimage.label(binary, structure=STRUCTURE)
    # Summed probability of each component, over its pixels only (fast: few pixels pass);
    # argmax: ties -> the lowest label, i.e. the component met first in C order.
    mass = np.bincount(labels[binary], weights=probs[binary], minlength=n + 1)
    mask = labels == int(np.argmax(mass[1:])) + 1
    area = mask.sum(axis=(1, 2))
    chosen = np.flatnonzero(area >= area_threshold_px)
    if not len(chosen):
        chosen = np.array([int(np.argmax(area))])
    return Localisation(probs, mask, area, chosen, centroid(mask[chosen]), True)


def centroid(mask: np.ndarray) -> np.ndarray:
    """Return the mean (row, col) of the pixels of a non-empty mask (..., H, W)."""
    h, w = mask.shape[-2:]
    per_row = mask.reshape(-1, h, w).sum(axis=(0, 2))  # pixels in each row, over all slices
    per_col = mask.reshape(-1, h, w).sum(axis=(0, 1))
    return np.array([per_row @ np.arange(h), per_col @ np.arange(w)]) / per_row.sum()


def fallback(probs: np.ndarray) -> Localisation:
    """Return the localisation used when no pixel reaches the probability threshold.

    The slice with the largest summed probability is chosen (the network's best guess, even if
    unsure) and centred on its probability-weighted centroid; when every probability is zero
    (e.g. a carried guide series is missing), the middle slice and the image centre. The mask
    is empty (``found=False``) so that no tumour is claimed.
    """
    s, h, w = probs.shape
    per_slice = probs.sum(axis=(1, 2), dtype=np.float64)
    best = int(np.argmax(per_slice)) if per_slice.max() > 0 else s // 2
    if per_slice[best] > 0:
        weights = probs[best].astype(np.float64)
        center = (
            np.array([weights.sum(axis=1) @ np.arange(h), weights.sum(axis=0) @ np.arange(w)])
            / per_slice[best]
        )
    else:
        center = np.array([(h - 1) / 2, (w - 1) / 2])
    mask = np.zeros(probs.shape, dtype=bool)
    return Localisation(probs, mask, np.zeros(s, dtype=np.int64), np.array([best]), center, False)


def choose_area_threshold(areas: list[np.ndarray], annotated: list[np.ndarray]) -> float:
    """Return the area threshold (pixels) that best separates annotated tumour slices.

    ``areas[i]`` is training patient i's predicted tumour area per slice (``area_px`` of
    :func:`locate` with threshold 0), ``annotated[i]`` its (S_i,) bool of annotated tumour
    slices. Candidates are 0 and every distinct positive area; the one maximising slice-level
    balanced accuracy (mean of sensitivity and specificity over all slices of all patients) is
    returned, ties going to the smallest threshold (the more slices kept).

    Balanced accuracy because tumour slices are a minority of a series: plain accuracy would
    reward a threshold that drops small tumour slices, and it would depend on the share of
    tumour slices, which varies between patients and cohorts.
    """
    if len(areas) != len(annotated) or not len(areas):
        raise ValueError("need one annotation per patient and at least one patient")
    for a, t in zip(areas, annotated, strict=True):
        if np.shape(a) != np.shape(t) or np.ndim(a) != 1:
            raise ValueError(f"areas {np.shape(a)} and annotation {np.shape(t)} differ")
    area = np.concatenate([np.asarray(a, np.float64) for a in areas])
    truth = np.concatenate([np.asarray(t, bool) for t in annotated])
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("balanced accuracy needs both tumour and tumour-free slices")
    candidates = np.unique(np.concatenate([[0.0], area[area > 0]]))  # ascending
    # Slices selected by threshold c are those with area >= c: count them by binary search on
    # the sorted areas of each class, all candidates at once (exact, no candidate cap needed).
    pos, neg = np.sort(area[truth]), np.sort(area[~truth])
    tp = n_pos - np.searchsorted(pos, candidates, side="left")
    tn = np.searchsorted(neg, candidates, side="left")
    # Balanced accuracy times 2 * n_pos * n_neg, in integers so that ties are exact.
    score = tp.astype(np.int64) * n_neg + tn.astype(np.int64) * n_pos
    return float(candidates[int(np.argmax(score))])  # argmax: first maximum = smallest


def crop_at(images: np.ndarray, center: np.ndarray, crop: int) -> np.ndarray:
    """Return the ``crop`` x ``crop`` windows of slices (S, W, W) centered on ``center`` (row, col),
    shifted inside the slice where the center lies near its edge: the classifier's input."""
    wide = images.shape[-1]
    top = np.clip(np.round(center - (crop - 1) / 2).astype(int), 0, wide - crop)
    return images[:, top[0] : top[0] + crop, top[1] : top[1] + crop]
