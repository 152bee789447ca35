"""Automatic tumour-slice selection of one series with trained detectors (see :mod:`.views`).

Used by the workflow's automatic-selection jobs (held-out patients) and by ``gynmri predict``
(a new exam), so that both follow exactly the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gynmri.detection import views


@dataclass(frozen=True)
class Selection:
    """What the detectors made of one series."""

    scores: np.ndarray  # per-slice tumour probability (whole-slice views)
    chosen: np.ndarray  # indices of the selected slices
    center: np.ndarray  # estimated tumour center (row, col) in wide pixels
    crops: np.ndarray  # the selected slices cropped around the center, (n, size, size)


def select_and_crop(
    detectors: list, images: np.ndarray, size: int, tiles: int, threshold: float
) -> Selection:
    """Return the :class:`Selection` of one series' wide slices (S, W, W); the detectors'
    tumour probabilities are averaged."""
    from gynmri.training.step import predict_proba

    def tumour_probability(images_: np.ndarray) -> np.ndarray:
        return np.mean([predict_proba(d, images_)[:, 1] for d in detectors], axis=0)

    scores = tumour_probability(views.overview(images, size))
    chosen = views.select_slices(scores, threshold)
    windows = views.tiles_of(images[chosen], size, tiles).reshape(-1, size, size)
    tile_scores = tumour_probability(windows).reshape(len(chosen), tiles, tiles)
    center = views.tumour_center(tile_scores, images.shape[-1], size)
    return Selection(scores, chosen, center, views.crop_at(images[chosen], center, size))
