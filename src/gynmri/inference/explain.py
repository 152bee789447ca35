"""PNG overlays of class-activation maps on MobileNetV2 slices, and the report's sample of them.

The maps themselves come from :mod:`gynmri.inference.cams` (the method drawn:
``cams.FIGURE_METHOD``); :mod:`gynmri.inference.cam_scores` computes them for every held-out
patient and scores them against the tumour.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gynmri.inference.cam_scores import FoldMaps


def _draw(
    ax: Any,
    image: np.ndarray,
    heatmap: np.ndarray,
    title: str,
    alpha: float,
    outline: np.ndarray | None = None,
) -> None:
    """Draw one slice with its heatmap on a matplotlib Axes, and the outline of a mask (the
    localiser's tumour) when given."""
    from matplotlib import colormaps

    image = np.asarray(image, np.float32)
    heatmap = np.asarray(heatmap, np.float32)
    if image.ndim != 2 or heatmap.shape != image.shape:
        raise ValueError(
            f"need a 2-D image and a heatmap of its shape, got {image.shape}, {heatmap.shape}"
        )
    # Percentile window: z-scored slices have outliers that would wash out a min/max window.
    finite = image[np.isfinite(image)]
    lo, hi = np.percentile(finite, (1, 99)) if finite.size else (0.0, 1.0)
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
    h = np.clip(np.nan_to_num(heatmap), 0.0, 1.0)
    rgba = colormaps["jet"](h)
    rgba[..., 3] = alpha * h  # opacity follows the map: anatomy stays visible where it is low
    ax.imshow(rgba, interpolation="bilinear")
    if outline is not None and np.any(outline):
        ax.contour(np.asarray(outline, np.float32), levels=[0.5], colors="lime", linewidths=1.2)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


def _save(fig: Any, path: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # Agg directly: no pyplot state, no display needed on cluster nodes
    fig.savefig(path, format="png", bbox_inches="tight", pad_inches=0.05)
    return path


def overlay_png(
    image: np.ndarray, heatmap: np.ndarray, path: str | Path, title: str = "", alpha: float = 0.4
) -> Path:
    """Write a PNG of the grayscale slice (H, W) with the heatmap (H, W, in [0, 1]) overlaid.

    Jet colors, opacity ``alpha * heatmap`` (transparent where the map is low), no axes, a
    small title. Returns the path.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 3), dpi=100)
    _draw(fig.add_subplot(), image, heatmap, title, alpha)
    return _save(fig, path)


def overlay_grid_png(
    images: Sequence[np.ndarray] | np.ndarray,
    heatmaps: Sequence[np.ndarray] | np.ndarray,
    path: str | Path,
    titles: Sequence[str] | None = None,
    alpha: float = 0.4,
    ncols: int | None = None,
    outlines: Sequence[np.ndarray] | np.ndarray | None = None,
    suptitle: str = "",
) -> Path:
    """Write one PNG with slices and their heatmaps (as overlay_png), ``ncols`` per row (all in
    one row by default), with the outline of ``outlines[i]`` (masks) when given and a title
    over all; returns the path."""
    n = len(images)
    titles = [""] * n if titles is None else list(titles)
    if n == 0 or len(heatmaps) != n or len(titles) != n:
        raise ValueError(
            f"need >= 1 image and as many heatmaps and titles: {n}, {len(heatmaps)}, {len(titles)}"
        )
    from matplotlib.figure import Figure

    ncols = min(ncols or n, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(3 * ncols, 3 * nrows), dpi=100)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    outlines = [None] * n if outlines is None else list(outlines)
    for ax, image, heatmap, title, outline in zip(
        axes[:n], images, heatmaps, titles, outlines, strict=True
    ):
        _draw(ax, image, heatmap, title, alpha, outline)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return _save(fig, path)


def plot_cam_sample(
    folds: Sequence[FoldMaps],
    classes: list[str],
    path: str | Path,
    method: str,
    per_class: int = 1,
) -> Path:
    """Write the ``method`` maps of a sample of held-out patients: rows = patients, columns =
    sequences, the annotated tumour outlined.

    ``folds``: the maps of :func:`gynmri.inference.cam_scores.explain_run` (each patient by the
    model of its test fold). Up to ``per_class`` patients per true class, those with a view in
    every sequence first; each panel is the map of the class the model calls.
    """
    from gynmri.report.sections import CAM_METHODS

    sequences = list(dict.fromkeys(f.sequence for f in folds))
    where = {  # (sequence, patient) -> (fold maps, row)
        (f.sequence, patient): (f, i) for f in folds for i, patient in enumerate(f.views.patients)
    }
    label_of = {patient: int(f.views.labels[i]) for (_, patient), (f, i) in where.items()}
    complete = {p: all((s, p) in where for s in sequences) for p in label_of}
    # complete patients first, then by key (keys are hashes: an arbitrary but fixed order)
    order = sorted(label_of, key=lambda p: (not complete[p], p))
    patients = [
        p for c in range(len(classes)) for p in [q for q in order if label_of[q] == c][:per_class]
    ]
    if not patients:
        raise ValueError("no held-out patient with an annotated slice to explain")
    images, maps, titles, outlines = [], [], [], []
    for patient in patients:
        for sequence in sequences:
            if (sequence, patient) not in where:  # an empty panel keeps the grid's columns
                blank = np.zeros(folds[0].views.images.shape[1:], np.float32)
                images.append(blank)
                maps.append(blank)
                outlines.append(blank)
                titles.append(f"{sequence}: no slice")
                continue
            f, i = where[(sequence, patient)]
            images.append(f.views.images[i])
            maps.append(f.maps[method][i])
            outlines.append(f.views.masks[i])
            titles.append(
                f"{sequence}: true {classes[f.views.labels[i]]}, called {classes[f.called[i]]}"
            )
    return overlay_grid_png(
        np.stack(images),
        np.stack(maps),
        path,
        titles,
        ncols=len(sequences),
        outlines=outlines,
        suptitle=f"{CAM_METHODS[method]}, called class; green: the annotated tumour",
    )
