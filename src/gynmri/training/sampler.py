"""Class-balanced sampling: per-class index tables, the host-side draw of each batch, and its
augmentation on the device.

Every batch has the same shape (batch_size, H, W) whatever the training set's size, so the jitted
step compiles once per architecture: one compilation (or one load from the persistent cache)
serves every sequence, fold and detector of a run, and later runs. The host draws a uniform class
per sample and then a uniform member of that class, so every class is seen equally often whatever
their counts (the study's "augmented to the same number per class"), and sends only that batch.
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
    # Rows are padded by repetition; positions drawn stay below counts.
    table = np.stack([np.resize(m, int(counts.max())) for m in members]).astype(np.int32)
    return table, counts


class BatchSampler:
    """Class-balanced batches of a training set kept on the host.

    ``batch(seed, step)`` is a pure function of (seed, step), so a run resumed at any step draws
    exactly the batches the uninterrupted run would have drawn. With ``pool`` P > 0 each sample is
    a draw (class c, index i in [0, P)) from a virtual pool of P augmented images per class: pool
    item (c, i) is image ``table[c, i % counts[c]]`` (augmented on the device with a key made of
    (c, i), see :func:`augment_draws`).
    """

    def __init__(
        self, images: np.ndarray, labels: np.ndarray, n_classes: int, batch_size: int, pool: int
    ):
        self.images = np.ascontiguousarray(images, np.float32)
        self.table, self.counts = class_tables(labels, n_classes)
        self.batch_size, self.pool = int(batch_size), int(pool)

    def batch(self, seed: tuple[int, ...], step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (images (B, H, W) float32, classes (B,) int32, pool draws (B,) int32)."""
        rng = np.random.default_rng([*seed, int(step)])
        cls = rng.integers(0, len(self.counts), self.batch_size).astype(np.int32)
        if self.pool:
            draw = rng.integers(0, self.pool, self.batch_size).astype(np.int32)
            pos = draw % self.counts[cls]
        else:
            draw = np.zeros(self.batch_size, np.int32)
            pos = (rng.random(self.batch_size) * self.counts[cls]).astype(np.int64)
        return self.images[self.table[cls, pos]], cls, draw


def augment_draws(
    key: jax.Array,
    images: jax.Array,
    cls: jax.Array,
    draw: jax.Array,
    aug: tuple,
    pool: int,
    aug_key: jax.Array,
) -> jax.Array:
    """Return a drawn batch (B, H, W) augmented on the device: with a pool, pool item (c, i) is
    augmented with key ``fold_in(fold_in(aug_key, c), i)`` wherever it is drawn; without, each
    image gets a fresh augmentation from ``key``."""
    if pool:
        keys = jax.vmap(lambda c, i: jax.random.fold_in(jax.random.fold_in(aug_key, c), i))(
            cls, draw
        )
        return augment_with_keys(keys, images, dict(aug))
    return augment_batch(key, images, dict(aug))
