"""Class-activation maps (Grad-CAM) of the MobileNetV2 slice classifiers, and PNG overlays.

Grad-CAM (Selvaraju et al. 2017) explains the last conv block (``MobileNetV2.features``, stride
32: a 256x256 slice gives an 8x8 map, a 32x32 one a single cell). Because our head is a global
average pool followed by one dense layer, the Grad-CAM channel weights equal the classifier
column of the class divided by h*w, i.e. Grad-CAM here is CAM (Zhou et al. 2016) up to scale; the
gradient is still taken with jax.grad so that the maps stay right if the head ever changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import nnx

from gynmri.training.model import MobileNetV2, to_nhwc
from gynmri.training.step import PREDICT_BATCH, fixed_batches


def _cam(model: MobileNetV2, images: jax.Array, classes: jax.Array) -> jax.Array:
    """Return Grad-CAM maps (B, H, W) in [0, 1] for images (B, H, W) and classes (B,)."""
    # float32 features: under bfloat16 compute the gradient and the weighted sum would otherwise
    # be bfloat16; head() casts to float32 first anyway, so the logits are unchanged.
    feats = model.features(to_nhwc(images, model.in_channels)).astype(jnp.float32)

    def class_logits(f: jax.Array) -> jax.Array:
        # Images are independent in eval mode, so the gradient of the sum is per-image.
        logits = model.head(f)
        return jnp.take_along_axis(logits, classes[:, None], axis=1).sum()

    grads = jax.grad(class_logits)(feats)  # (B, h, w, C)
    weights = grads.mean(axis=(1, 2))  # alpha_c^k: spatial mean of the gradient
    cam = jax.nn.relu(jnp.einsum("bhwc,bc->bhw", feats, weights))
    b, h, w = images.shape
    # Upsample the coarse map; bilinear weights are convex, so it stays >= 0.
    cam = jax.image.resize(cam, (b, h, w), method="bilinear")
    peak = cam.max(axis=(1, 2), keepdims=True)
    # A map with no positive evidence stays all zero instead of 0/0.
    return jnp.where(peak > 0, cam / jnp.where(peak > 0, peak, 1.0), 0.0).clip(0.0, 1.0)


@partial(jax.jit, static_argnums=(0,))
def _gradcam_batch(graphdef: Any, state: Any, images: jax.Array, classes: jax.Array) -> jax.Array:
    return _cam(nnx.merge(graphdef, state), images, classes)


def gradcam(
    model: MobileNetV2,
    images: np.ndarray,
    class_index: int | Sequence[int] | np.ndarray,
    batch_size: int = PREDICT_BATCH,
) -> np.ndarray:
    """Return Grad-CAM maps (N, H, W) float32 in [0, 1] for slices (N, H, W) and a class.

    ``class_index``: one class for all images, or one per image (N,). Each map is relu(sum_c
    w_c A_c) over the last conv block's channels A_c, with w_c the spatial mean of d logit /
    d A_c, bilinearly upsampled to H x W and divided by its maximum (a map with no positive
    evidence is all zero). BatchNorm uses its running statistics (eval mode); `model` itself is
    left as it was (not switched to eval mode, unlike predict_proba).
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {images.shape}")
    n = images.shape[0]
    classes = np.asarray(class_index)
    if classes.ndim > 1 or (classes.ndim == 1 and classes.shape[0] != n):
        raise ValueError(
            f"class_index must be an int or one class per image ({n}), got {classes.shape}"
        )
    classes = np.broadcast_to(classes, (n,)).astype(np.int32)
    if classes.size and (classes.min() < 0 or classes.max() >= model.num_classes):
        raise ValueError(f"class_index must lie in [0, {model.num_classes}), got {class_index}")
    if n == 0:
        return np.zeros(images.shape, np.float32)
    # An eval-mode view shares the arrays but leaves the caller's module (and its mode) alone.
    view = nnx.view(model, use_running_average=True, raise_if_not_found=False)
    graphdef, state = nnx.split(view)
    out = []
    # Batches of exactly batch_size (the last padded): one compiled shape per model, whatever n.
    for (chunk, real), (cls, _) in zip(
        fixed_batches(images, batch_size), fixed_batches(classes, batch_size), strict=True
    ):
        cam = _gradcam_batch(graphdef, state, jnp.asarray(chunk), jnp.asarray(cls))
        out.append(np.asarray(cam)[:real])
    return np.concatenate(out).astype(np.float32, copy=False)


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
) -> Path:
    """Write one PNG with slices and their heatmaps (as overlay_png), ``ncols`` per row (all in
    one row by default), with the outline of ``outlines[i]`` (masks) when given; returns the
    path."""
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
    return _save(fig, path)


def plot_gradcam_sample(
    models: dict[str, str],
    slices: pd.DataFrame,
    classes: list[str],
    path: str | Path,
    per_class: int = 1,
) -> Path:
    """Write Grad-CAM maps of held-out patients: rows = patients, columns = sequences.

    ``models``: sequence -> the folder of the model that did NOT train on these patients (their
    test fold); ``slices``: their annotated slice tables. Up to ``per_class`` patients per true
    class; each panel shows the patient's middle tumour slice with the map of the class the
    model predicts.
    """
    from gynmri.io.slices import to_images
    from gynmri.training.step import predict_proba
    from gynmri.training.weights import load_model

    loaded = {sequence: load_model(Path(folder))[0] for sequence, folder in models.items()}
    patients = (
        slices.drop_duplicates("patient")
        .sort_values("patient")
        .groupby("label", sort=False)
        .head(per_class)["patient"]
        .tolist()
    )
    images, maps, titles = [], [], []
    for patient in patients:
        for sequence, model in loaded.items():
            part = slices[(slices["patient"] == patient) & (slices["sequence"] == sequence)]
            if part.empty:
                continue
            part = part.sort_values("slice_index")
            image = to_images(part.iloc[[len(part) // 2]])
            predicted = int(predict_proba(model, image).argmax(axis=1)[0])
            images.append(image[0])
            maps.append(gradcam(model, image, predicted)[0])
            titles.append(f"{sequence}: true {part['label'].iloc[0]}, called {classes[predicted]}")
    if not images:
        raise ValueError("no slices to explain")
    return overlay_grid_png(np.stack(images), np.stack(maps), path, titles, ncols=len(models))
