"""Training and inference of the tumour segmentation network (the localiser).

nnU-Net's recipe at the pipeline's size: Dice + cross-entropy, deep supervision (the decoder's
coarser outputs learn the downsampled masks, weights 1, 1/2, 1/4), foreground oversampling (each
batch is ``tumour_share`` slices with tumour, the rest without), the classifier's on-device
augmentation with the masks moved alike. The batch shape is fixed, so one compiled step serves
every fold and sequence of a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from flax import nnx

from gynmri.localise.networks import build_network, segment_logits
from gynmri.training.augment import augment_with_masks
from gynmri.training.programs import SharedProgram, describe_structure, on_device
from gynmri.training.step import _freeze, fixed_batches, make_optimizer

#: Slices per forward pass in prediction (one compiled shape per network and slice size).
PREDICT_BATCH = 32
HISTORY = ["epoch", "train_loss", "seconds", "images_per_second"]
_SUPERVISION = (1.0, 0.5, 0.25)


def _pool_mask(masks: jax.Array, factor: int) -> jax.Array:
    """Return the tumour fraction of each factor x factor block (a soft, downsampled mask)."""
    if factor == 1:
        return masks
    n, h, w = masks.shape
    ph, pw = (-h) % factor, (-w) % factor
    m = jnp.pad(masks, ((0, 0), (0, ph), (0, pw)))
    return m.reshape(n, m.shape[1] // factor, factor, m.shape[2] // factor, factor).mean((2, 4))


def dice_ce_loss(logits: jax.Array, target: jax.Array) -> jax.Array:
    """Return binary cross-entropy plus soft Dice loss (batch Dice over all pixels, smoothed by 1:
    batches of slices without tumour then ask for none)."""
    ce = optax.sigmoid_binary_cross_entropy(logits, target).mean()
    p = jax.nn.sigmoid(logits)
    dice = (2 * jnp.sum(p * target) + 1.0) / (jnp.sum(p) + jnp.sum(target) + 1.0)
    return ce + 1.0 - dice


def supervised_loss(outputs: list[jax.Array], masks: jax.Array) -> jax.Array:
    """Return the deep-supervision loss: each output against the mask at its resolution."""
    total, weights = 0.0, 0.0
    for logits, weight in zip(outputs, _SUPERVISION, strict=False):
        factor = -(-masks.shape[1] // logits.shape[1])
        target = _pool_mask(masks, factor)[:, : logits.shape[1], : logits.shape[2]]
        total += weight * dice_ce_loss(logits.astype(jnp.float32), target)
        weights += weight
    return total / weights


def _train_step(graphdef: Any, aug: tuple, state: Any, key: jax.Array, images, masks):
    net, optimizer = nnx.merge(graphdef, state)
    keys = jax.random.split(key, images.shape[0])
    x, m = augment_with_masks(keys, images, masks, dict(aug))

    def loss_fn(n: nnx.Module) -> jax.Array:
        return supervised_loss(segment_logits(n, x), m)

    loss, grads = nnx.value_and_grad(loss_fn)(net)
    optimizer.update(net, grads)
    return nnx.state((net, optimizer)), loss


def _shared_step(graphdef: Any, state: Any, aug: tuple) -> tuple[SharedProgram, Any]:
    """Return the train step on flat state leaves, traced once for all jobs that share the
    compilation cache (:class:`gynmri.training.programs.SharedProgram`), and the treedef."""
    treedef = jax.tree.structure(state)

    def localiser_step(leaves, key, images, masks):  # noqa: ANN001, ANN202
        new, loss = _train_step(
            graphdef, aug, jax.tree.unflatten(treedef, leaves), jax.random.wrap_key_data(key),
            images, masks,
        )  # fmt: skip
        return jax.tree.leaves(new), loss

    description = "\n".join((describe_structure(graphdef), str(treedef), repr(aug)))
    return SharedProgram(localiser_step, description, donate_argnums=(0,)), treedef


class BalancedPatches:
    """Host-side training batches: patches of ``patch`` pixels (None: whole slices) cut from
    the wide slices, ``tumour_share`` of them from slices with tumour and placed so that they
    hold a random tumour pixel (nnU-Net's foreground oversampling), the rest anywhere in slices
    without tumour (all from one kind when the other is absent). The batch of step k is a
    function of (seed, k) alone. The network is fully convolutional: it is trained on patches
    and applied to whole slices, at a quarter of the cost per image for half-size patches."""

    def __init__(self, masks: np.ndarray, batch_size: int, tumour_share: float, seed: int, patch):
        has_tumour = masks.any(axis=(1, 2))
        self.masks = masks
        self.tumour, self.other = np.flatnonzero(has_tumour), np.flatnonzero(~has_tumour)
        if not len(self.tumour) and not len(self.other):
            raise ValueError("no slices to train the localiser on")
        both = len(self.tumour) and len(self.other)
        share = tumour_share if both else float(bool(len(self.tumour)))
        self.n_tumour = int(round(batch_size * share))
        self.batch_size, self.seed = batch_size, seed
        size = masks.shape[1]
        self.patch = size if patch is None else min(int(patch), size)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (slice indices, patch rows, patch columns) of step ``step``'s batch."""
        rng = np.random.default_rng([self.seed, step])
        n_other = self.batch_size - self.n_tumour
        slices = np.concatenate(
            [rng.choice(self.tumour, self.n_tumour), rng.choice(self.other, n_other)]
            if n_other and self.n_tumour
            else [rng.choice(self.tumour if self.n_tumour else self.other, self.batch_size)]
        )
        size, p = self.masks.shape[1], self.patch
        rows, cols = rng.integers(0, size - p + 1, (2, len(slices)))
        for k in range(self.n_tumour):  # a patch around a random tumour pixel of the slice
            r, c = np.argwhere(self.masks[slices[k]])[rng.integers(self.masks[slices[k]].sum())]
            rows[k] = np.clip(r - rng.integers(p), 0, size - p)
            cols[k] = np.clip(c - rng.integers(p), 0, size - p)
        return slices, rows, cols

    def cut(self, arrays: np.ndarray, picks) -> np.ndarray:
        """Return the patches ``picks`` (from :meth:`batch`) of slices ``arrays`` (N, H, W)."""
        slices, rows, cols = picks
        p = self.patch
        return np.stack(
            [arrays[i, r : r + p, c : c + p] for i, r, c in zip(slices, rows, cols, strict=True)]
        )


def fit_localiser(
    images: np.ndarray,
    masks: np.ndarray,
    cfg: Mapping[str, Any],
    augment: Mapping[str, Any] | None,
    log: Callable[[str], None] = print,
) -> tuple[nnx.Module, pd.DataFrame]:
    """Return (trained network in eval mode, per-epoch history) for wide slices (N, H, W) and
    their tumour masks (N, H, W). ``cfg``: network settings and epochs, images_per_epoch,
    batch_size, learning_rate, weight_decay, tumour_share, seed; ``augment``: as train.augment."""
    images = np.asarray(images, np.float32)
    masks = np.asarray(masks, np.float32)
    batch, epochs = int(cfg["batch_size"]), int(cfg["epochs"])
    steps = max(1, int(cfg["images_per_epoch"]) // batch)
    net = build_network(cfg, int(cfg["seed"]))
    optimizer = make_optimizer(net, cfg["learning_rate"], cfg["weight_decay"], epochs * steps)
    net.train()
    graphdef, state = nnx.split((net, optimizer))
    sampler = BalancedPatches(
        masks, batch, float(cfg["tumour_share"]), int(cfg["seed"]), cfg.get("patch")
    )
    key = jax.random.key(int(cfg["seed"]))
    step, treedef = _shared_step(graphdef, state, _freeze(augment))
    leaves, rows = on_device(state), []
    for epoch in range(1, epochs + 1):
        t0, losses = time.perf_counter(), []
        for k in range((epoch - 1) * steps, epoch * steps):
            picks = sampler.batch(k)
            x, m = sampler.cut(images, picks), sampler.cut(masks, picks)
            leaves, loss = step(leaves, jax.random.key_data(jax.random.fold_in(key, k)), x, m)
            losses.append(loss)
        loss = float(jnp.mean(jnp.stack(losses)))  # waits for the epoch's last step
        seconds = time.perf_counter() - t0
        rows.append((epoch, loss, seconds, steps * batch / seconds))
        log(
            f"localiser epoch {epoch}/{epochs} loss {rows[-1][1]:.4f} {seconds:.1f}s {rows[-1][3]:.1f} img/s"
        )
    nnx.update((net, optimizer), jax.tree.unflatten(treedef, leaves))
    net.eval()
    return net, pd.DataFrame(rows, columns=HISTORY)


#: The forward pass of each network structure met in this process (traced once for all jobs).
_FORWARD: dict[Any, SharedProgram] = {}


def _forward(graphdef: Any, treedef: Any) -> SharedProgram:
    if (graphdef, treedef) not in _FORWARD:

        def localiser_maps(leaves, images):  # noqa: ANN001, ANN202
            net = nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))
            return jax.nn.sigmoid(segment_logits(net, images)[0])

        description = describe_structure(graphdef) + "\n" + str(treedef)
        _FORWARD[graphdef, treedef] = SharedProgram(localiser_maps, description)
    return _FORWARD[graphdef, treedef]


def predict_maps(net: nnx.Module, images: np.ndarray) -> np.ndarray:
    """Return the tumour probability of every pixel of slices (N, H, W), in fixed-size batches
    (one compiled shape per network and slice size); leaves the network in eval mode."""
    images = np.asarray(images, np.float32)
    net.eval()
    graphdef, state = nnx.split(net)
    forward, leaves = _forward(graphdef, jax.tree.structure(state)), on_device(state)
    out = [
        np.asarray(forward(leaves, chunk))[:real]
        for chunk, real in fixed_batches(images, PREDICT_BATCH)
    ]
    return np.concatenate(out) if out else np.zeros(images.shape, np.float32)
