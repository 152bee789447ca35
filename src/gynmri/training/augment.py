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

from gynmri.config import section


def settings(cfg: Mapping[str, Any] | None) -> dict:
    """Return the augmentation settings: config train/augment with the schema's defaults (off)
    for the keys left out; raise ConfigError on an unknown key or a bad value."""
    # a frozen config (the jitted step's static argument) holds tuples where YAML has lists
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in (cfg or {}).items()}
    out = section("train.augment", cfg)
    lo, hi = out["scale"]
    if hi < lo:
        raise ValueError(f"augment scale must be 0 < lo <= hi, got {out['scale']!r}")
    return out


def geometry_enabled(cfg: Mapping[str, Any]) -> bool:
    """Return True when the settings ask for any geometric transform (so a warp is needed)."""
    return bool(
        cfg["rotate_deg"]
        or cfg["flip_lr"]
        or cfg["flip_ud"]
        or tuple(cfg["scale"]) != (1.0, 1.0)
        or cfg["translate_frac"]
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
    max_rad = jnp.deg2rad(float(cfg["rotate_deg"]))
    theta = jax.random.uniform(k_rot, (), minval=-max_rad, maxval=max_rad)
    flip_r = jnp.where(cfg["flip_ud"] & jax.random.bernoulli(k_ud), -1.0, 1.0)
    flip_c = jnp.where(cfg["flip_lr"] & jax.random.bernoulli(k_lr), -1.0, 1.0)
    lo, hi = (float(v) for v in cfg["scale"])
    scale = jax.random.uniform(k_scale, (), minval=lo, maxval=hi)
    frac = float(cfg["translate_frac"])
    shift = jax.random.uniform(k_tr, (2,), minval=-frac, maxval=frac) * jnp.array([h, w])

    # Output pixel p maps to source c + F R(-theta) (p - c - t) / s: the inverse of
    # "flip, rotate, zoom about the center, then translate". Exact integer coordinates for a
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
    # Fill with the slice's minimum (background after normalization), not 0, which may be tissue.
    return bilinear_sample(image, src_r, src_c, jnp.min(image))


def augment_batch(key: jax.Array, images: jax.Array, cfg: Mapping[str, Any] | None) -> jax.Array:
    """Return a randomly augmented copy of images (N, H, W) float32, independently per image."""
    cfg = settings(cfg)
    images = jnp.asarray(images, jnp.float32)
    n = images.shape[0]
    k_geo, k_con, k_int = jax.random.split(key, 3)
    # cfg is static Python data: transforms that are off cost nothing in the compiled step.
    if geometry_enabled(cfg):
        keys = jax.random.split(k_geo, n)
        images = jax.vmap(lambda k, im: _warp_one(k, im, cfg))(keys, images)
    contrast = float(cfg["contrast"])
    if contrast:
        u = jax.random.uniform(k_con, (n, 1, 1), minval=-1.0, maxval=1.0)
        images = images * (1.0 + u * contrast)
    intensity = float(cfg["intensity"])
    if intensity:
        v = jax.random.uniform(k_int, (n, 1, 1), minval=-1.0, maxval=1.0)
        images = images + v * intensity
    return images


def augment_one(key: jax.Array, image: jax.Array, cfg: Mapping[str, Any] | None) -> jax.Array:
    """Return one image (H, W) augmented by cfg; the result is a function of (key, image) alone."""
    cfg = settings(cfg)
    image = jnp.asarray(image, jnp.float32)
    k_geo, k_con, k_int = jax.random.split(key, 3)
    if geometry_enabled(cfg):
        image = _warp_one(k_geo, image, cfg)
    contrast = float(cfg["contrast"])
    if contrast:
        image = image * (1.0 + jax.random.uniform(k_con, (), minval=-1.0, maxval=1.0) * contrast)
    intensity = float(cfg["intensity"])
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
    cfg = settings(cfg)
    return jax.vmap(lambda k, im: augment_one(k, im, cfg))(keys, jnp.asarray(images, jnp.float32))


def augment_with_masks(
    keys: jax.Array, images: jax.Array, masks: jax.Array, cfg: Mapping[str, Any] | None
) -> tuple[jax.Array, jax.Array]:
    """Return images (N, H, W) augmented as :func:`augment_with_keys` does, and their masks
    (N, H, W) moved by the same geometric transform (bilinear, then >= 0.5: a mask stays 0/1);
    intensity changes apply to the images only."""
    cfg = settings(cfg)

    def one(key: jax.Array, image: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = augment_one(key, image, cfg)
        if geometry_enabled(cfg):  # augment_one's geometric key: the first of its split
            mask = _warp_one(jax.random.split(key, 3)[0], mask, cfg) >= 0.5
        return out, mask.astype(jnp.float32)

    return jax.vmap(one)(keys, jnp.asarray(images, jnp.float32), jnp.asarray(masks, jnp.float32))
