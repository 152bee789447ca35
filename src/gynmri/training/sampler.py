"""Class-balanced sampling on the device: per-class index tables and one batch draw.

The whole training set lives on the device; a jitted step draws a uniform class per sample and
then a uniform member of that class, so every class is seen equally
often whatever their counts (the study's "augmented to the same number per class").
"""

from __future__ import annotations

import jax
import numpy as np

from gynmri.training.augment import augment_batch, augment_with_keys


def class_tables(labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (table (K, max_count) of sample indices per class, padded by repetition; counts (K,))."""
    labels = np.asarray(labels).astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    members = [np.flatnonzero(labels == k) for k in range(n_classes)]
    missing = [k for k, m in enumerate(members) if m.size == 0]
    if missing:
        raise ValueError(
            f"classes {missing} have no training samples (n_classes={n_classes}); a class-balanced "
            "sampler cannot draw them -- drop the classes or fix the fold split"
        )
    counts = np.array([m.size for m in members], np.int32)
    # Rows are padded by repetition (never drawn: positions stay below counts); the width is
    # bucketed so that folds of similar size share one compiled step.
    width = bucket_size(int(counts.max()))
    table = np.stack([np.resize(m, width) for m in members]).astype(np.int32)
    return table, counts


def bucket_size(n: int) -> int:
    """Return n rounded up to a multiple of 2**(floor(log2 n) - 3), i.e. at most 12.5% above n."""
    if n <= 16:
        return max(n, 1)
    step = 2 ** (int(np.log2(n)) - 3)
    return -(-n // step) * step


def draw_batch(
    key: jax.Array,
    images: jax.Array,
    table: jax.Array,
    counts: jax.Array,
    batch_size: int,
    aug: tuple,
    pool: int,
    aug_key: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Return (augmented images (B, H, W), class labels (B,)) for one class-balanced batch."""
    k_cls, k_idx, k_aug = jax.random.split(key, 3)
    # Class-balanced: a uniform class per sample, then a uniform member of that class.
    cls = jax.random.randint(k_cls, (batch_size,), 0, table.shape[0])
    if pool:
        draw = jax.random.randint(k_idx, (batch_size,), 0, pool)
        pos = draw % counts[cls]
        keys = jax.vmap(lambda c, i: jax.random.fold_in(jax.random.fold_in(aug_key, c), i))(
            cls, draw
        )
        return augment_with_keys(keys, images[table[cls, pos]], dict(aug)), cls
    pos = jax.random.randint(k_idx, (batch_size,), 0, counts[cls])
    return augment_batch(k_aug, images[table[cls, pos]], dict(aug)), cls
