"""On-device data augmentation for batches of 2-D slices, in pure jax (jit- and vmap-friendly).

All geometric transforms (rotation, flips, isotropic scale, translation) are folded into ONE
affine map per image and applied with a single bilinear resampling, so the image is blurred once
rather than once per transform. Configuration keys that are missing (or zero/False) mean "off".

Config keys (all optional)::

    rotate_deg: float        # angle uniform in [-rotate_deg, +rotate_deg]
    flip_lr: bool            # left-right flip with probability 1/2
    flip_ud: bool            # up-down flip with probability 1/2
    scale: [lo, hi]          # isotropic zoom factor uniform in [lo, hi] (>1 enlarges content)
    translate_frac: float    # shift uniform in +-translate_frac * size, per axis
    contrast: float          # x * (1 + u * contrast), u uniform in [-1, 1]
    intensity: float         # ... + v * intensity, v uniform in [-1, 1]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp


def _scale_range(cfg: Mapping[str, Any]) -> tuple[float, float]:
    scale = cfg.get("scale")
    if not scale:
        return (1.0, 1.0)
    lo, hi = float(scale[0]), float(scale[1])
    if lo <= 0 or hi < lo:
        raise ValueError(f"augment scale must be 0 < lo <= hi, got {scale!r}")
    return (lo, hi)


def geometry_enabled(cfg: Mapping[str, Any]) -> bool:
    """Return True when cfg asks for any geometric transform (so a warp is needed)."""
    return bool(
        float(cfg.get("rotate_deg", 0.0) or 0.0) != 0.0
        or cfg.get("flip_lr", False)
        or cfg.get("flip_ud", False)
        or _scale_range(cfg) != (1.0, 1.0)
        or float(cfg.get("translate_frac", 0.0) or 0.0) != 0.0
    )


def bilinear_sample(
    image: jax.Array, rows: jax.Array, cols: jax.Array, fill: jax.Array
) -> jax.Array:
    """Return image (H, W) sampled at float coordinates (rows, cols), `fill` outside the image."""
    h, w = image.shape
    r0 = jnp.floor(rows)
    c0 = jnp.floor(cols)
    dr = rows - r0
    dc = cols - c0
    r0 = r0.astype(jnp.int32)
    c0 = c0.astype(jnp.int32)

    def tap(r: jax.Array, c: jax.Array) -> jax.Array:
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        value = image[jnp.clip(r, 0, h - 1), jnp.clip(c, 0, w - 1)]
        return jnp.where(inside, value, fill)

    top = tap(r0, c0) * (1 - dc) + tap(r0, c0 + 1) * dc
    bottom = tap(r0 + 1, c0) * (1 - dc) + tap(r0 + 1, c0 + 1) * dc
    return top * (1 - dr) + bottom * dr


def _warp_one(key: jax.Array, image: jax.Array, cfg: Mapping[str, Any]) -> jax.Array:
    """Return one image under a random affine map built from cfg (inverse mapping, bilinear)."""
    h, w = image.shape
    k_rot, k_lr, k_ud, k_scale, k_tr = jax.random.split(key, 5)
    max_rad = jnp.deg2rad(float(cfg.get("rotate_deg", 0.0) or 0.0))
    theta = jax.random.uniform(k_rot, (), minval=-max_rad, maxval=max_rad)
    flip_r = jnp.where(cfg.get("flip_ud", False) & jax.random.bernoulli(k_ud), -1.0, 1.0)
    flip_c = jnp.where(cfg.get("flip_lr", False) & jax.random.bernoulli(k_lr), -1.0, 1.0)
    lo, hi = _scale_range(cfg)
    scale = jax.random.uniform(k_scale, (), minval=lo, maxval=hi)
    frac = float(cfg.get("translate_frac", 0.0) or 0.0)
    shift = jax.random.uniform(k_tr, (2,), minval=-frac, maxval=frac) * jnp.array([h, w])

    # Output pixel p maps to source c + F R(-theta) (p - c - t) / s: the inverse of
    # "flip, rotate, zoom about the centre, then translate". Exact integer coordinates for a
    # pure flip, so flips are lossless.
    cr, cc = (h - 1) / 2.0, (w - 1) / 2.0
    rr, cc_grid = jnp.meshgrid(
        jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij"
    )
    y = (rr - cr - shift[0]) / scale
    x = (cc_grid - cc - shift[1]) / scale
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    src_r = cr + flip_r * (cos * y - sin * x)
    src_c = cc + flip_c * (sin * y + cos * x)
    # Fill with the slice's minimum (background after normalisation), not 0, which may be tissue.
    return bilinear_sample(image, src_r, src_c, jnp.min(image))


def augment_batch(key: jax.Array, images: jax.Array, cfg: Mapping[str, Any] | None) -> jax.Array:
    """Return a randomly augmented copy of images (N, H, W) float32, independently per image."""
    cfg = dict(cfg or {})
    images = jnp.asarray(images, jnp.float32)
    n = images.shape[0]
    k_geo, k_con, k_int = jax.random.split(key, 3)
    # cfg is static Python data: transforms that are off cost nothing in the compiled step.
    if geometry_enabled(cfg):
        keys = jax.random.split(k_geo, n)
        images = jax.vmap(lambda k, im: _warp_one(k, im, cfg))(keys, images)
    contrast = float(cfg.get("contrast", 0.0) or 0.0)
    if contrast:
        u = jax.random.uniform(k_con, (n, 1, 1), minval=-1.0, maxval=1.0)
        images = images * (1.0 + u * contrast)
    intensity = float(cfg.get("intensity", 0.0) or 0.0)
    if intensity:
        v = jax.random.uniform(k_int, (n, 1, 1), minval=-1.0, maxval=1.0)
        images = images + v * intensity
    return images


def augment_one(key: jax.Array, image: jax.Array, cfg: Mapping[str, Any] | None) -> jax.Array:
    """Return one image (H, W) augmented by cfg; the result is a function of (key, image) alone."""
    cfg = dict(cfg or {})
    image = jnp.asarray(image, jnp.float32)
    k_geo, k_con, k_int = jax.random.split(key, 3)
    if geometry_enabled(cfg):
        image = _warp_one(k_geo, image, cfg)
    contrast = float(cfg.get("contrast", 0.0) or 0.0)
    if contrast:
        image = image * (1.0 + jax.random.uniform(k_con, (), minval=-1.0, maxval=1.0) * contrast)
    intensity = float(cfg.get("intensity", 0.0) or 0.0)
    if intensity:
        image = image + jax.random.uniform(k_int, (), minval=-1.0, maxval=1.0) * intensity
    return image


def augment_with_keys(
    keys: jax.Array, images: jax.Array, cfg: Mapping[str, Any] | None
) -> jax.Array:
    """Return images (N, H, W) augmented with one key per image (keys of shape (N,)).

    Unlike ``augment_batch`` (one key for the batch), image i's augmentation depends on keys[i]
    only, so a draw from a fixed, seeded pool of augmented images (see ``train.fit``'s
    ``images_per_class``) is the same whichever batch or position it lands in.
    """
    cfg = dict(cfg or {})
    return jax.vmap(lambda k, im: augment_one(k, im, cfg))(keys, jnp.asarray(images, jnp.float32))
