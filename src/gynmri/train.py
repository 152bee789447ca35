"""Training, prediction and (de)serialisation of the per-sequence MobileNetV2 slice classifiers.

The whole training set lives on the device; every jitted step draws a class-balanced batch there,
augments it, and updates the model, so the host only dispatches steps.

``fit`` can checkpoint after every epoch (orbax) and resume an interrupted run bit for bit: the
per-step random keys are ``fold_in(data_key, global_step)``, so a run restored at the end of an
epoch continues with exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from flax import nnx

from gynmri.augment import augment_batch, augment_with_keys
from gynmri.model import MobileNetV2

#: Test hook (used by tests/test_resume.py): when set to N, fit kills its own process (SIGKILL)
#: right after the checkpoint of epoch N is on disk, like a job killed by a scheduler.
KILL_AFTER_EPOCH_ENV = "GYNMRI_TEST_KILL_AFTER_EPOCH"
CHECKPOINT_FORMAT = 1
#: train_cfg keys that do not change the result, left out of a checkpoint's fingerprint.
_RESULT_NEUTRAL_KEYS = ("threads",)

STATE_FILE = "state.npz"
META_FILE = "meta.json"
FORMAT_VERSION = 1
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "val_loss",
    "val_balanced_accuracy",
    "seconds",
    "images_per_second",
]


def in_channels_for(model_cfg: Mapping[str, Any]) -> int:
    """Return the stem's input channels: 3 for stem 'replicate', 1 for 'single'."""
    stem = model_cfg.get("stem", "replicate")
    if stem not in ("replicate", "single"):
        raise ValueError(f"model stem must be 'replicate' or 'single', got {stem!r}")
    return 3 if stem == "replicate" else 1


def build_model(n_classes: int, model_cfg: Mapping[str, Any], seed: int = 0) -> MobileNetV2:
    """Return a freshly initialised MobileNetV2 for model_cfg (width, stem, depthwise, dtype).

    ``dtype`` is the compute dtype: "float32" (default) or "bfloat16" (mixed precision; the
    parameters, BatchNorm statistics and optimizer state stay float32).
    """
    return MobileNetV2(
        n_classes,
        width=float(model_cfg.get("width", 1.0)),
        in_channels=in_channels_for(model_cfg),
        depthwise=model_cfg.get("depthwise", "shifted"),
        bn_momentum=float(model_cfg.get("bn_momentum", 0.999)),
        dtype=model_cfg.get("dtype", "float32") or "float32",
        rngs=nnx.Rngs(seed),
    )


def to_nhwc(images: jax.Array, in_channels: int) -> jax.Array:
    """Return (N, H, W) slices as (N, H, W, in_channels), repeating the slice for a 3-channel stem."""
    x = images[..., None]
    return jnp.broadcast_to(x, (*images.shape, in_channels)) if in_channels > 1 else x


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


def enable_compilation_cache(cache_dir: str | Path) -> None:
    """Turn on jax's persistent compilation cache in cache_dir (shared by later processes)."""
    # A first training step takes ~15-40 s to compile on 2 CPU cores; models with the same
    # architecture, batch and (bucketed) data shape then load it from disk instead.
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def make_optimizer(
    model: MobileNetV2, train_cfg: Mapping[str, Any], total_steps: int
) -> nnx.Optimizer:
    """Return an nnx.Optimizer: Adam(W) with cosine decay of the learning rate over total_steps."""
    tx = _transform(
        float(train_cfg.get("learning_rate", 1e-3)),
        float(train_cfg.get("weight_decay", 0.0) or 0.0),
        max(1, int(total_steps)),
    )
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


@lru_cache(maxsize=64)
def _transform(
    learning_rate: float, weight_decay: float, total_steps: int
) -> optax.GradientTransformation:
    # Cached: the transform is static in the optimizer's graphdef, so reusing the same object
    # lets a second model with the same settings reuse the compiled train step.
    schedule = optax.cosine_decay_schedule(learning_rate, total_steps)
    if weight_decay > 0:
        return optax.adamw(schedule, weight_decay=weight_decay)
    return optax.adam(schedule)


def _freeze(cfg: Mapping[str, Any] | None) -> tuple:
    """Return a hashable, order-independent form of an augmentation config."""
    return tuple(
        sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in (cfg or {}).items())
    )


def make_train_step(
    graphdef: Any,
    batch_size: int,
    aug_cfg: Mapping[str, Any] | None,
    in_channels: int,
    images_per_class: int | None = None,
    aug_key: jax.Array | None = None,
) -> Callable[..., tuple[Any, jax.Array]]:
    """Return step(state, key, images, table, counts) -> (state, loss) for split (model, opt).

    With ``images_per_class`` P, each sample is a draw (class c, index i in [0, P)) from a
    virtual pool of P augmented images per class: pool item (c, i) is training image
    ``table[c, i % counts[c]]`` augmented with key ``fold_in(fold_in(aug_key, c), i)``. The pool
    is never materialised, so its size costs no memory.
    """
    pool = int(images_per_class or 0)
    if pool < 0:
        raise ValueError(f"images_per_class must be >= 1 (or absent), got {images_per_class}")
    step = partial(_train_step, graphdef, int(batch_size), _freeze(aug_cfg), int(in_channels), pool)
    if aug_key is None:
        aug_key = jax.random.key(0)
    return lambda state, key, images, table, counts: step(
        state, key, images, table, counts, aug_key
    )


def _draw_batch(
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


# Module-level and keyed on static arguments, so identical configurations compile once per
# process; the (model, optimizer) state is donated so XLA updates weights in place.
@partial(jax.jit, static_argnums=(0, 1, 2, 3, 4), donate_argnums=(5,))
def _train_step(
    graphdef: Any,
    batch_size: int,
    aug: tuple,
    in_channels: int,
    pool: int,
    state: Any,
    key: jax.Array,
    images: jax.Array,
    table: jax.Array,
    counts: jax.Array,
    aug_key: jax.Array,
) -> tuple[Any, jax.Array]:
    model, optimizer = nnx.merge(graphdef, state)
    x, cls = _draw_batch(key, images, table, counts, batch_size, aug, pool, aug_key)
    x = to_nhwc(x, in_channels)

    def loss_fn(m: MobileNetV2) -> jax.Array:
        logits = m(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, cls).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), loss


@partial(jax.jit, static_argnums=(0,))
def _forward_proba(graphdef: Any, state: Any, images: jax.Array) -> jax.Array:
    model = nnx.merge(graphdef, state)
    return jax.nn.softmax(model(to_nhwc(images, model.in_channels)), axis=-1)


def predict_proba(model: MobileNetV2, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Return softmax probabilities (N, n_classes) for slices (N, H, W); leaves model in eval mode."""
    images = np.asarray(images, np.float32)
    n = images.shape[0]
    if n == 0:
        return np.zeros((0, model.num_classes), np.float32)
    model.eval()
    graphdef, state = nnx.split(model)
    bs = min(batch_size, n)
    out = []
    for start in range(0, n, bs):
        chunk = images[start : start + bs]
        real = chunk.shape[0]
        if real < bs:  # pad so the forward pass is compiled for one shape only
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], bs - real, axis=0)])
        out.append(_forward_proba(graphdef, state, jnp.asarray(chunk))[:real])
    return np.asarray(jnp.concatenate(out))


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Return the mean per-class recall over the classes present in labels."""
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    recalls = [np.mean(predicted[labels == k] == k) for k in np.unique(labels)]
    return float(np.mean(recalls)) if recalls else float("nan")


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
) -> tuple[MobileNetV2, pd.DataFrame]:
    """Return (trained model in eval mode, per-epoch history DataFrame).

    train_cfg keys: batch_size, epochs, images_per_epoch, learning_rate, weight_decay, seed,
    augment, and optionally ``images_per_class``: the size of the (virtual) augmented pool per
    class, as in "875,000 augmented images per class"; draw i in [0, images_per_class) of class
    c is a fixed training image augmented with ``fold_in(fold_in(aug_key, c), i)``, generated on
    the fly (no memory cost). Absent: every draw gets a fresh augmentation. (A pool smaller
    than a class leaves that class's images beyond the pool size unused.)

    checkpoint_dir: when given, the model and optimizer state, step, epoch, data key and history
    are saved there (orbax, last 2 kept) after every epoch, and a run whose checkpoint there
    matches this call (classes, model_cfg, train_cfg, a sha256 of the data) resumes from its
    next epoch; the result equals an uninterrupted run's. A checkpoint of a different run is
    ignored (logged) and replaced.
    """
    train_images = np.asarray(train_images, np.float32)
    if train_images.ndim != 3:
        raise ValueError(f"train_images must be (N, H, W), got shape {train_images.shape}")
    table, counts = class_tables(train_labels, n_classes)
    batch_size = int(train_cfg.get("batch_size", 32))
    epochs = int(train_cfg.get("epochs", 1))
    steps_per_epoch = max(
        1, int(train_cfg.get("images_per_epoch", len(train_images))) // batch_size
    )
    seed = int(train_cfg.get("seed", 0))
    images_per_class = train_cfg.get("images_per_class")
    has_val = val_images is not None and val_labels is not None and len(val_labels) > 0

    model = build_model(n_classes, model_cfg, seed)
    optimizer = make_optimizer(model, train_cfg, epochs * steps_per_epoch)
    model.train()
    graphdef, state = nnx.split((model, optimizer))
    aug_key = jax.random.fold_in(jax.random.key(seed), 2)
    step = make_train_step(
        graphdef,
        batch_size,
        train_cfg.get("augment"),
        model.in_channels,
        images_per_class=images_per_class,
        aug_key=aug_key,
    )

    # Put on the device once (batches are gathered there), padded to a bucketed length so that
    # folds of similar size share the compiled step; padding rows are never indexed.
    padded = np.zeros((bucket_size(len(train_images)), *train_images.shape[1:]), np.float32)
    padded[: len(train_images)] = train_images
    images_dev = jnp.asarray(padded)
    table_dev, counts_dev = jnp.asarray(table), jnp.asarray(counts)
    data_key = jax.random.fold_in(jax.random.key(seed), 1)

    rows: list[tuple] = []
    global_step = 0
    first_epoch = 1
    checkpoints = None
    if checkpoint_dir is not None:
        fingerprint = run_fingerprint(
            n_classes, model_cfg, train_cfg, train_images, train_labels, val_images, val_labels
        )
        checkpoints = _Checkpoints(Path(checkpoint_dir), fingerprint, log)
        restored = checkpoints.restore(state, data_key)
        if restored is not None:
            state, data_key, rows, global_step = restored
            first_epoch = len(rows) + 1
            log(
                f"resumed from checkpoint {checkpoint_dir} after epoch {len(rows)} "
                f"(step {global_step}); continuing with epoch {first_epoch}/{epochs}"
            )
    kill_after = int(os.environ.get(KILL_AFTER_EPOCH_ENV, "0") or 0)

    for epoch in range(first_epoch, epochs + 1):
        t0 = time.perf_counter()
        losses = []
        for _ in range(steps_per_epoch):
            key = jax.random.fold_in(data_key, global_step)
            state, loss = step(state, key, images_dev, table_dev, counts_dev)
            losses.append(loss)  # kept on device: fetching each would stall the dispatch queue
            global_step += 1
        train_loss = float(jnp.mean(jnp.stack(losses)))
        train_seconds = time.perf_counter() - t0
        val_loss = val_bacc = float("nan")
        if has_val:
            nnx.update((model, optimizer), state)
            proba = predict_proba(model, val_images)
            y = np.asarray(val_labels).astype(np.int64)
            val_loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-7, 1.0))))
            val_bacc = balanced_accuracy(y, proba.argmax(axis=1))
        seconds = time.perf_counter() - t0
        ips = steps_per_epoch * batch_size / train_seconds
        rows.append((epoch, train_loss, val_loss, val_bacc, seconds, ips))
        msg = f"epoch {epoch}/{epochs} train_loss {train_loss:.4f}"
        if has_val:
            msg += f" val_loss {val_loss:.4f} val_bacc {val_bacc:.3f}"
        log(msg + f" {seconds:.1f}s {ips:.1f} img/s")
        if checkpoints is not None:
            checkpoints.save(epoch, state, data_key, rows, global_step)
            if epoch == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)  # test hook: see KILL_AFTER_EPOCH_ENV

    if checkpoints is not None:
        checkpoints.close()
    nnx.update((model, optimizer), state)
    model.eval()
    return model, pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def _sha256_array(h: Any, a: np.ndarray | None) -> None:
    if a is None:
        h.update(b"none")
        return
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())


def run_fingerprint(
    n_classes: int,
    model_cfg: Mapping[str, Any],
    train_cfg: Mapping[str, Any],
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
) -> str:
    """Return a canonical JSON string naming a training run (config and data sha256s).

    A checkpoint is resumed only into a run with the same fingerprint.
    """
    data = hashlib.sha256()
    _sha256_array(data, np.asarray(train_images, np.float32))
    _sha256_array(data, np.asarray(train_labels).astype(np.int64))
    val = hashlib.sha256()
    _sha256_array(val, None if val_images is None else np.asarray(val_images, np.float32))
    _sha256_array(val, None if val_labels is None else np.asarray(val_labels).astype(np.int64))
    doc = {
        "checkpoint_format": CHECKPOINT_FORMAT,
        "n_classes": int(n_classes),
        "model_cfg": dict(model_cfg),
        "train_cfg": {k: v for k, v in train_cfg.items() if k not in _RESULT_NEUTRAL_KEYS},
        "train_data_sha256": data.hexdigest(),
        "val_data_sha256": val.hexdigest(),
    }
    return json.dumps(doc, sort_keys=True, default=str)


class _Checkpoints:
    """Per-epoch orbax checkpoints of one fit() run in a directory (steps = epochs, last 2 kept)."""

    def __init__(self, directory: Path, fingerprint: str, log: Callable[[str], None]):
        import orbax.checkpoint as ocp  # imported lazily: only runs that checkpoint pay for it

        self.ocp = ocp
        self.directory = Path(directory).absolute()
        self.fingerprint = fingerprint
        self.log = log
        self.manager = self._open()

    def _open(self) -> Any:
        ocp = self.ocp
        self.directory.mkdir(parents=True, exist_ok=True)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=2, create=True, enable_async_checkpointing=False
        )
        return ocp.CheckpointManager(self.directory, options=options)

    def restore(self, state: Any, data_key: jax.Array) -> tuple | None:
        """Return (state, data_key, history rows, global_step) of the latest matching checkpoint."""
        ocp = self.ocp
        latest = self.manager.latest_step()
        if latest is None:
            return None
        try:
            meta = self.manager.restore(
                latest, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            )
            meta = meta["meta"]
        except Exception as err:  # unreadable or foreign: never resume from it
            meta = None
            reason = f"cannot read its metadata ({type(err).__name__}: {err})"
        else:
            reason = "it was written by a run with a different configuration or data"
        if meta is None or meta.get("fingerprint") != self.fingerprint:
            self.log(
                f"ignoring checkpoint {self.directory} (epoch {latest}): {reason}; "
                "starting from scratch and replacing it"
            )
            self.manager.close()
            shutil.rmtree(self.directory)
            self.manager = self._open()
            return None
        target = {
            "state": nnx.to_pure_dict(state),
            "data_key": jax.random.key_data(data_key),
        }
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        restored = self.manager.restore(
            latest, args=ocp.args.Composite(train=ocp.args.StandardRestore(abstract))
        )["train"]
        # orbax returns committed arrays; fresh ones are uncommitted, and jit keys its cache on
        # that, so rebuilding them (via the host) lets the resumed run reuse the compiled step.
        nnx.replace_by_pure_dict(
            state, jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), restored["state"])
        )
        rows = [tuple(math.nan if v is None else v for v in row) for row in meta["history"]]
        rows = [(int(r[0]), *r[1:]) for r in rows]
        key = jax.random.wrap_key_data(
            jnp.asarray(np.asarray(restored["data_key"])), impl=jax.random.key_impl(data_key)
        )
        return state, key, rows, int(meta["global_step"])

    def save(
        self, epoch: int, state: Any, data_key: jax.Array, rows: list[tuple], global_step: int
    ) -> None:
        ocp = self.ocp
        history = [[None if isinstance(v, float) and math.isnan(v) else v for v in r] for r in rows]
        meta = {
            "fingerprint": self.fingerprint,
            "epoch": int(epoch),
            "global_step": int(global_step),
            "history": history,
            "history_columns": HISTORY_COLUMNS,
        }
        train = {"state": nnx.to_pure_dict(state), "data_key": jax.random.key_data(data_key)}
        self.manager.save(
            int(epoch),
            args=ocp.args.Composite(
                train=ocp.args.StandardSave(train), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def _flat_state(model: MobileNetV2) -> dict[str, Any]:
    """Return the model's full state (params + batch stats) as {'a/b/0/kernel': array}."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, (*prefix, str(k)))
        else:
            flat["/".join(prefix)] = node

    walk(nnx.to_pure_dict(nnx.state(model)), ())
    return flat


def save_model(model: MobileNetV2, path: Path, meta: dict) -> None:
    """Write state.npz (flattened params and batch stats) and meta.json into directory path."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if "n_classes" in meta and int(meta["n_classes"]) != model.num_classes:
        raise ValueError(f"meta n_classes {meta['n_classes']} != model's {model.num_classes}")
    arrays = {k: np.asarray(v) for k, v in _flat_state(model).items()}
    np.savez(path / STATE_FILE, **arrays)
    full_meta = {**meta, "n_classes": model.num_classes, "format_version": FORMAT_VERSION}
    full_meta.setdefault("model_cfg", {})
    # Keep the architecture in meta even if the caller's model_cfg omitted defaults.
    full_meta["model_cfg"] = {
        **full_meta["model_cfg"],
        "width": model.width,
        "stem": "replicate" if model.in_channels == 3 else "single",
        "bn_momentum": model.bn_momentum,
        "dtype": model.dtype,
    }
    (path / META_FILE).write_text(json.dumps(full_meta, indent=2, sort_keys=True, default=str))


def load_model(path: Path) -> tuple[MobileNetV2, dict]:
    """Return (model in eval mode with the saved state, meta dict) from a save_model directory."""
    path = Path(path)
    meta = json.loads((path / META_FILE).read_text())
    model = build_model(int(meta["n_classes"]), meta.get("model_cfg", {}))
    state = nnx.state(model)
    target = _flat_state(model)
    with np.load(path / STATE_FILE) as saved:
        if set(saved.files) != set(target):
            diff = sorted(set(saved.files) ^ set(target))[:5]
            raise ValueError(f"{path}: saved state does not match the architecture in meta: {diff}")
        for k, v in target.items():
            if saved[k].shape != v.shape:
                raise ValueError(f"{path}: {k} has shape {saved[k].shape}, expected {v.shape}")
        pure = nnx.to_pure_dict(state)
        for k in target:
            node = pure
            *parents, leaf = k.split("/")
            for p in parents:
                node = node[_key_of(node, p)]
            node[_key_of(node, leaf)] = jnp.asarray(saved[k])
    nnx.replace_by_pure_dict(state, pure)
    nnx.update(model, state)
    model.eval()
    return model, meta


def _key_of(node: Mapping, name: str) -> Any:
    # Pure-dict keys of list entries are ints; the npz names store them as strings.
    for k in node:
        if str(k) == name:
            return k
    raise KeyError(name)


def benchmark(
    width: float,
    size: int,
    batch_size: int,
    steps: int,
    depthwise: str = "shifted",
    *,
    stem: str = "replicate",
    augment: Mapping[str, Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> float:
    """Return training throughput in images/s (after one untimed compile step)."""
    n_classes = 3
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.standard_normal((4 * batch_size, size, size), np.float32))
    table, counts = class_tables(np.arange(4 * batch_size) % n_classes, n_classes)
    model = build_model(n_classes, {"width": width, "stem": stem, "depthwise": depthwise})
    optimizer = make_optimizer(model, {"learning_rate": 1e-3}, steps + 1)
    model.train()
    graphdef, state = nnx.split((model, optimizer))
    step = make_train_step(graphdef, batch_size, augment, model.in_channels)
    args = (images, jnp.asarray(table), jnp.asarray(counts))
    key = jax.random.key(0)
    t0 = time.perf_counter()
    state, loss = step(state, key, *args)
    jax.block_until_ready(loss)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(steps):
        state, loss = step(state, jax.random.fold_in(key, i + 1), *args)
    jax.block_until_ready((state, loss))
    ips = steps * batch_size / (time.perf_counter() - t0)
    if log is not None:
        log(
            f"width {width} size {size} batch {batch_size} {depthwise} stem {stem}: "
            f"first step {compile_s:.1f}s, {ips:.1f} img/s"
        )
    return ips
