"""``fit``: train one MobileNetV2 on 2-D slices, epoch by epoch, with resumable checkpoints.

The host draws each class-balanced batch (:class:`gynmri.training.sampler.BatchSampler`); one
jitted step of a fixed shape augments it on the device and updates the model, so one compilation
serves every training set of the same architecture (and later jobs, via the persistent cache).

With a checkpoint folder, ``fit`` saves after an epoch (orbax; at most every ``train.checkpoint_seconds``) and resumes an interrupted run
bit for bit: each step's batch and random key are functions of (data_key, global_step), so a run
restored at the end of an epoch continues with exactly the batches the uninterrupted run would
have drawn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import nnx

from gynmri.config import section
from gynmri.evaluation.confusion import macro_recall
from gynmri.training.checkpoints import HISTORY_COLUMNS, Checkpoints, run_fingerprint
from gynmri.training.model import MobileNetV2, build_model
from gynmri.training.sampler import BatchSampler
from gynmri.training.step import SharedTrainStep, make_optimizer, predict_proba


def _epoch(step, state: Any, sampler: BatchSampler, data_key: jax.Array, first: int, steps: int):
    """Return (state, mean training loss) after ``steps`` steps from global step ``first``."""
    seed = tuple(int(w) for w in np.asarray(jax.random.key_data(data_key)).ravel())
    losses = []
    leaves = step.flatten(state)
    for k in range(first, first + steps):
        images, cls, draw = sampler.batch(seed, k)
        leaves, loss = step(leaves, jax.random.fold_in(data_key, k), images, cls, draw)
        losses.append(loss)  # kept on device: fetching each would stall the dispatch queue
    return step.unflatten(leaves), float(jnp.mean(jnp.stack(losses)))


def _validate(model: MobileNetV2, images: np.ndarray | None, labels: np.ndarray | None):
    """Return (validation loss, balanced accuracy), NaN without validation slices."""
    if images is None or labels is None or not len(labels):
        return float("nan"), float("nan")
    proba = predict_proba(model, images)
    y = np.asarray(labels).astype(np.int64)
    loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-7, 1.0))))
    return loss, macro_recall(y, proba.argmax(axis=1))


def _resume(checkpoints: Checkpoints | None, state: Any, data_key: jax.Array, log, epochs: int):
    """Return (state, data_key, history rows, global step) of a matching checkpoint, or the
    fresh run's when there is none."""
    restored = checkpoints.restore(state, data_key) if checkpoints is not None else None
    if restored is None:
        return state, data_key, [], 0
    state, data_key, rows, global_step = restored
    log(
        f"resumed from checkpoint {checkpoints.directory} after epoch {len(rows)} "
        f"(step {global_step}); continuing with epoch {len(rows) + 1}/{epochs}"
    )
    return state, data_key, rows, global_step


def _networks(n_classes: int, model_cfg: dict, cfg: dict, pool: int, total_steps: int):
    """Return (model in train mode, optimizer, their split state, the train step: traced once
    for all jobs, :class:`gynmri.training.step.SharedTrainStep`)."""
    model = build_model(n_classes, model_cfg, cfg["seed"])
    optimizer = make_optimizer(model, cfg["learning_rate"], cfg["weight_decay"], total_steps)
    model.train()
    graphdef, state = nnx.split((model, optimizer))
    step = SharedTrainStep(
        graphdef,
        state,
        cfg["batch_size"],
        cfg["augment"],
        model.in_channels,
        images_per_class=pool,
        aug_key=jax.random.fold_in(jax.random.key(cfg["seed"]), 2),
    )
    return model, optimizer, state, step


def fit(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    n_classes: int,
    model_cfg: dict,
    train_cfg: dict,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    log: Callable[[str], None] = print,
    checkpoint_dir: Path | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> tuple[MobileNetV2, pd.DataFrame]:
    """Return (trained model in eval mode, per-epoch history DataFrame).

    ``model_cfg``, ``train_cfg``: the config sections model and train (keys left out take the
    schema's defaults). ``train_cfg['images_per_class']``: the size of the (virtual) augmented
    pool per class, as in "875,000 augmented images per class" (see
    :func:`gynmri.training.step.make_train_step`); absent: a fresh augmentation every draw.

    ``checkpoint_dir``: the model and optimizer state, step, epoch, data key and history are
    saved there after an epoch when ``checkpoint_seconds`` have passed since the last save
    (orbax, last 2 kept), and a run whose checkpoint there matches
    this call (classes, settings, a sha256 of the data) resumes from its next epoch; the result
    equals an uninterrupted run's. A checkpoint of a different run is ignored (logged) and
    replaced. ``on_epoch_end(epoch)`` is called after each epoch (and its checkpoint).
    """
    model_cfg, cfg = section("model", model_cfg), section("train", train_cfg)
    train_images = np.asarray(train_images, np.float32)
    if train_images.ndim != 3:
        raise ValueError(f"train_images must be (N, H, W), got shape {train_images.shape}")
    batch_size, epochs, seed = cfg["batch_size"], cfg["epochs"], cfg["seed"]
    pool = int(cfg.get("images_per_class") or 0)
    sampler = BatchSampler(train_images, train_labels, n_classes, batch_size, pool)
    steps_per_epoch = max(1, cfg["images_per_epoch"] // batch_size)

    model, optimizer, state, step = _networks(
        n_classes, model_cfg, cfg, pool, epochs * steps_per_epoch
    )
    checkpoints = None
    if checkpoint_dir is not None:  # a run is resumed only into the same settings and data
        run = (n_classes, model_cfg, cfg, train_images, train_labels, val_images, val_labels)
        checkpoints = Checkpoints(
            Path(checkpoint_dir), run_fingerprint(*run), log, cfg["checkpoint_seconds"]
        )
    data_key = jax.random.fold_in(jax.random.key(seed), 1)
    state, data_key, rows, global_step = _resume(checkpoints, state, data_key, log, epochs)

    started = time.perf_counter()
    for epoch in range(len(rows) + 1, epochs + 1):
        t0 = time.perf_counter()
        state, train_loss = _epoch(step, state, sampler, data_key, global_step, steps_per_epoch)
        global_step += steps_per_epoch
        ips = steps_per_epoch * batch_size / (time.perf_counter() - t0)
        nnx.update((model, optimizer), state)
        val_loss, val_bacc = _validate(model, val_images, val_labels)
        seconds = time.perf_counter() - t0
        rows.append((epoch, train_loss, val_loss, val_bacc, seconds, ips))
        val = "" if np.isnan(val_loss) else f" val_loss {val_loss:.4f} val_bacc {val_bacc:.3f}"
        log(
            f"epoch {epoch}/{epochs} train_loss {train_loss:.4f}{val} {seconds:.1f}s {ips:.1f} img/s"
        )
        if checkpoints is not None:
            checkpoints.save_if_due(epoch, epoch == epochs, state, data_key, rows, global_step)
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    saving = 0.0
    if checkpoints is not None:
        checkpoints.close()
        saving = checkpoints.seconds
    log(f"training: {time.perf_counter() - started:.1f} s (of which checkpoints {saving:.1f} s)")
    nnx.update((model, optimizer), state)
    model.eval()
    return model, pd.DataFrame(rows, columns=HISTORY_COLUMNS)
