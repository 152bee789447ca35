"""Class-activation maps at more than one depth, and how well they point at the tumour.

Methods (``METHODS``), all for one target per image:
- ``gradcam``: Grad-CAM on the last conv block (stride 32: 2 x 2 cells at 48 pixels, a single
  cell at 32, so a constant map).
- ``gradcam16``: Grad-CAM on the last stride-16 block (96 channels x width), twice as fine.
- ``hirescam``: HiResCAM (Draelos & Carin 2020) on the stride-16 block: the gradient times the
  activation, summed over channels, without Grad-CAM's spatial averaging of the gradient (which
  can point at regions the model did not use).

Target: the class logit minus the mean of all logits. With two classes the softmax depends only
on the difference of the logits, so this is the difference map (half of it); the plain class
logit would carry the part of the two classifier columns' sum, which the softmax ignores and
training never changes from its initial value.

Measures against the tumour mask (:func:`pointing_hit`, :func:`energy_in_mask`): the pointing
game (Zhang et al. 2018: is the map's maximum inside the tumour) and the share of the map's
energy inside it. A map of 2 x 2 cells cannot point at a tumour in the middle of the crop:
bilinear upsampling (edges clamped) puts its maximum in a corner quadrant, and over any region
mirror-symmetric about the centre its mean is that of the whole map, so its energy share equals
the region's area share. The stride-16 block (3 x 3 at 48 pixels) has a middle cell.

``FIGURE_METHOD`` is the one the report's figure and ``gynmri predict`` draw: HiResCAM, the
finest map and the one that pointed at the tumour most often on the demo (``explanations.tsv``
scores them all on every run).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gynmri.training.model import BLOCK_SPECS, MobileNetV2, correct_pad, relu6, to_nhwc
from gynmri.training.step import PREDICT_BATCH, fixed_batches

METHODS = ("gradcam", "gradcam16", "hirescam")
#: The method drawn for readers (report figure, gynmri predict); the methods' names for readers
#: are gynmri.report.sections.CAM_METHODS (importable without jax, as the report needs).
FIGURE_METHOD = "hirescam"
#: Index of the last block at stride 16 (end of the 5th group of BLOCK_SPECS).
_STRIDE16 = sum(n for _, _, n, _ in BLOCK_SPECS[:5]) - 1


def _stem(model: MobileNetV2, x: jax.Array) -> jax.Array:
    pad = correct_pad((x.shape[1], x.shape[2]), 3)
    x = jnp.pad(x.astype(model.dtype), ((0, 0), pad[0], pad[1], (0, 0)))
    return relu6(model.stem_bn(model.stem_conv(x)))


def _tapped(model: MobileNetV2, images: jax.Array, tap: int) -> tuple[jax.Array, Any]:
    """Return (activations after block ``tap``, function of them giving the logits)."""
    x = _stem(model, to_nhwc(images, model.in_channels))
    for block in model.blocks[: tap + 1]:
        x = block(x)

    def rest(a: jax.Array) -> jax.Array:
        for block in model.blocks[tap + 1 :]:
            a = block(a)
        return model.head(relu6(model.head_bn(model.head_conv(a))))

    return x.astype(jnp.float32), rest


def _target(logits: jax.Array, classes: jax.Array) -> jax.Array:
    """Return the summed targets: class logit minus the mean logit (images are independent)."""
    chosen = jnp.take_along_axis(logits, classes[:, None], axis=1)[:, 0]
    return (chosen - logits.mean(axis=1)).sum()


def _normalised(cam: jax.Array, shape: tuple[int, int, int]) -> jax.Array:
    cam = jax.image.resize(jax.nn.relu(cam), shape, method="bilinear")
    peak = cam.max(axis=(1, 2), keepdims=True)
    return jnp.where(peak > 0, cam / jnp.where(peak > 0, peak, 1.0), 0.0).clip(0.0, 1.0)


def _maps(model: MobileNetV2, images: jax.Array, classes: jax.Array, method: str) -> jax.Array:
    tap = len(model.blocks) - 1 if method == "gradcam" else _STRIDE16
    acts, rest = _tapped(model, images, tap)
    if method == "gradcam":  # the last block's activations are those after the head conv
        acts = relu6(model.head_bn(model.head_conv(acts))).astype(jnp.float32)

        def rest(a: jax.Array) -> jax.Array:  # noqa: F811 (the head alone)
            return model.head(a)

    grads = jax.grad(lambda a: _target(rest(a), classes))(acts)
    if method == "hirescam":
        cam = (grads * acts).sum(axis=-1)
    else:
        cam = jnp.einsum("bhwc,bc->bhw", acts, grads.mean(axis=(1, 2)))
    return _normalised(cam, images.shape)


@partial(jax.jit, static_argnums=(0, 4))
def _batch(graphdef: Any, state: Any, images: jax.Array, classes: jax.Array, method: str):
    return _maps(nnx.merge(graphdef, state), images, classes, method)


def class_maps(
    model: MobileNetV2, images: np.ndarray, classes: np.ndarray, method: str
) -> np.ndarray:
    """Return maps (N, H, W) in [0, 1] of ``method`` for slices (N, H, W) and one class for all
    or one per slice; a map with no positive evidence is all zero. BatchNorm uses its running
    statistics; ``model`` is left in the mode it was in."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    images = np.asarray(images, np.float32)
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {images.shape}")
    classes = np.asarray(classes)
    if classes.ndim > 1 or (classes.ndim == 1 and len(classes) != len(images)):
        raise ValueError(f"classes must be one class or one per image, got shape {classes.shape}")
    classes = np.broadcast_to(classes, (len(images),)).astype(np.int32)
    if classes.size and (classes.min() < 0 or classes.max() >= model.num_classes):
        raise ValueError(f"classes must lie in [0, {model.num_classes}), got {classes}")
    if not len(images):
        return np.zeros(images.shape, np.float32)
    view = nnx.view(model, use_running_average=True, raise_if_not_found=False)
    graphdef, state = nnx.split(view)
    out = [
        np.asarray(_batch(graphdef, state, jnp.asarray(x), jnp.asarray(c), method))[:real]
        for (x, real), (c, _) in zip(
            fixed_batches(images, PREDICT_BATCH), fixed_batches(classes, PREDICT_BATCH), strict=True
        )
    ]
    return np.concatenate(out).astype(np.float32, copy=False)


def is_flat(cam: np.ndarray) -> bool:
    """Return True for a constant map (all zero, or one cell upsampled): it points nowhere."""
    cam = np.asarray(cam)
    return bool(cam.max() <= cam.min())


def pointing_hit(cam: np.ndarray, mask: np.ndarray) -> bool:
    """Return True when the map's maximum (the first, if tied) lies inside the mask (H, W); a
    flat map is a miss (its argmax, pixel 0, would score by where the tumour happens to be)."""
    if is_flat(cam):
        return False
    return bool(np.asarray(mask, bool).ravel()[int(np.argmax(cam))])


def energy_in_mask(cam: np.ndarray, mask: np.ndarray) -> float:
    """Return the share of the map's total value inside the mask (NaN for an all-zero map)."""
    total = float(np.sum(cam))
    return (
        float(np.sum(np.asarray(cam)[np.asarray(mask, bool)]) / total)
        if total > 0
        else float("nan")
    )
