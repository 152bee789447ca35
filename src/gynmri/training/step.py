"""The jitted training step, the optimizer, and batched prediction of a MobileNetV2."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from gynmri.training.augment import settings as augment_settings
from gynmri.training.model import MobileNetV2, to_nhwc
from gynmri.training.programs import SharedProgram, describe_structure, on_device
from gynmri.training.sampler import augment_draws

#: Slices per forward pass in prediction, Grad-CAM and validation: one compiled shape per model.
PREDICT_BATCH = 64


def make_optimizer(
    model: MobileNetV2, learning_rate: float, weight_decay: float, total_steps: int
) -> nnx.Optimizer:
    """Return an nnx.Optimizer: Adam (AdamW when ``weight_decay`` > 0) with cosine decay of the
    learning rate over ``total_steps``.

    The three settings live in the optimizer's state, not in the compiled step: one compiled
    program serves every learning rate, weight decay and training length (a classifier and a
    detector of another budget load each other's program from the persistent cache).
    """
    optimizer = nnx.Optimizer(model, _TRANSFORM, wrt=nnx.Param)
    schedule = optimizer.opt_state[1]  # _TRANSFORM's second stage: a ScheduleState
    schedule.learning_rate.value = jnp.asarray(learning_rate, jnp.float32)
    schedule.weight_decay.value = jnp.asarray(weight_decay, jnp.float32)
    schedule.total_steps.value = jnp.asarray(max(1, int(total_steps)), jnp.int32)
    return optimizer


class ScheduleState(NamedTuple):
    """The state of :func:`_cosine_decayed_step`: step count and the settings, as arrays."""

    count: jax.Array
    learning_rate: jax.Array
    weight_decay: jax.Array
    total_steps: jax.Array


def _cosine_decayed_step() -> optax.GradientTransformation:
    """Return the last stage of AdamW: add ``weight_decay`` x params, then scale by minus
    optax's ``cosine_decay_schedule(learning_rate, total_steps)`` at the step count, with the
    settings read from the state (set by :func:`make_optimizer`)."""

    def init(params: Any) -> ScheduleState:
        zero = jnp.zeros([], jnp.float32)
        return ScheduleState(jnp.zeros([], jnp.int32), zero, zero, jnp.ones([], jnp.int32))

    def update(updates: Any, state: ScheduleState, params: Any = None):
        count = jnp.minimum(state.count, state.total_steps)
        decay = 0.5 * (1 + jnp.cos(jnp.pi * count / state.total_steps))
        rate = state.learning_rate * decay
        updates = jax.tree.map(lambda u, p: -rate * (u + state.weight_decay * p), updates, params)
        return updates, state._replace(count=optax.safe_increment(state.count))

    return optax.GradientTransformation(init, update)


#: Adam's moments, then decoupled weight decay and the scheduled rate (optax.adamw's order).
_TRANSFORM = optax.chain(optax.scale_by_adam(), _cosine_decayed_step())


def _freeze(cfg: Mapping[str, Any] | None) -> tuple:
    """Return a hashable, order-independent form of an augmentation config (defaults filled)."""
    filled = augment_settings(cfg)
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filled.items()))


def make_train_step(
    graphdef: Any,
    batch_size: int,
    aug_cfg: Mapping[str, Any] | None,
    in_channels: int,
    images_per_class: int | None = None,
    aug_key: jax.Array | None = None,
) -> Callable[..., tuple[Any, jax.Array]]:
    """Return step(state, key, images, cls, draw) -> (state, loss) for split (model, opt).

    ``images`` (batch_size, H, W), ``cls`` and ``draw`` (batch_size,): a batch of
    :meth:`gynmri.training.sampler.BatchSampler.batch`. The step's shapes depend only on the
    batch and slice size, so every training set of a run shares one compilation. With
    ``images_per_class`` P, each sample is a draw (class c, index i in [0, P)) from a virtual
    pool of P augmented images per class, augmented with key ``fold_in(fold_in(aug_key, c), i)``.
    The pool is never materialized, so its size costs no memory.
    """
    pool = int(images_per_class or 0)
    if pool < 0:
        raise ValueError(f"images_per_class must be >= 1 (or absent), got {images_per_class}")
    step = partial(_train_step, graphdef, int(batch_size), _freeze(aug_cfg), int(in_channels), pool)
    if aug_key is None:
        aug_key = jax.random.key(0)
    return lambda state, key, images, cls, draw: step(state, key, images, cls, draw, aug_key)


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
    cls: jax.Array,
    draw: jax.Array,
    aug_key: jax.Array,
) -> tuple[Any, jax.Array]:
    model, optimizer = nnx.merge(graphdef, state)
    x = to_nhwc(augment_draws(key, images, cls, draw, aug, pool, aug_key), in_channels)

    def loss_fn(m: MobileNetV2) -> jax.Array:
        logits = m(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, cls).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), loss


class SharedTrainStep:
    """The train step of :func:`make_train_step` on the flat leaves of the (model, optimizer)
    state, traced once for every job that shares the compilation cache
    (:class:`gynmri.training.programs.SharedProgram`).

    ``flatten(state)`` gives the leaves a training loop carries from step to step (unflattening
    every step would cost milliseconds of Python); ``unflatten(leaves)`` the nnx state again.
    """

    def __init__(
        self,
        graphdef: Any,
        state: Any,
        batch_size: int,
        aug_cfg: Mapping[str, Any] | None,
        in_channels: int,
        images_per_class: int | None = None,
        aug_key: jax.Array | None = None,
    ):
        static = (graphdef, int(batch_size), _freeze(aug_cfg), int(in_channels))
        static += (int(images_per_class or 0),)
        self.treedef = treedef = jax.tree.structure(state)
        self.aug_key = jax.random.key_data(jax.random.key(0) if aug_key is None else aug_key)

        def train_step(leaves, key, images, cls, draw, aug_key):  # noqa: ANN001, ANN202
            new, loss = _train_step(
                *static,
                jax.tree.unflatten(treedef, leaves),
                jax.random.wrap_key_data(key),
                images,
                cls,
                draw,
                jax.random.wrap_key_data(aug_key),
            )
            if jax.tree.structure(new) != treedef:
                raise AssertionError("the train step changed the state's structure")
            return jax.tree.leaves(new), loss

        description = "\n".join((describe_structure(graphdef), str(treedef), repr(static[1:])))
        self.program = SharedProgram(train_step, description, donate_argnums=(0,))

    def flatten(self, state: Any) -> list[jax.Array]:
        """Return the state's leaves, committed to the device (:func:`on_device`)."""
        return on_device(state)

    def unflatten(self, leaves: list[jax.Array]) -> Any:
        return jax.tree.unflatten(self.treedef, leaves)

    def __call__(self, leaves: list[jax.Array], key: jax.Array, images, cls, draw):  # noqa: ANN001
        """Return (leaves, loss) after one step on the batch (images, cls, draw)."""
        return self.program(leaves, jax.random.key_data(key), images, cls, draw, self.aug_key)


@partial(jax.jit, static_argnums=(0,))
def _forward_proba(graphdef: Any, state: Any, images: jax.Array) -> jax.Array:
    model = nnx.merge(graphdef, state)
    return jax.nn.softmax(model(to_nhwc(images, model.in_channels)), axis=-1)


#: The forward pass of each model structure met in this process (traced once for all jobs).
_FORWARD: dict[Any, SharedProgram] = {}


def _forward_program(graphdef: Any, treedef: Any) -> SharedProgram:
    if (graphdef, treedef) not in _FORWARD:

        def forward_proba(leaves, images):  # noqa: ANN001, ANN202
            return _forward_proba(graphdef, jax.tree.unflatten(treedef, leaves), images)

        description = describe_structure(graphdef) + "\n" + str(treedef)
        _FORWARD[graphdef, treedef] = SharedProgram(forward_proba, description)
    return _FORWARD[graphdef, treedef]


def tta_views(images: np.ndarray, shift_px: int = 1, flip_lr: bool = False) -> np.ndarray:
    """Return the test-time views of slices (N, H, W) as (V, N, H, W): every shift by -shift_px
    to shift_px pixels in rows and columns (edge pixels repeated), each also mirrored left-right
    when ``flip_lr`` (only when training flipped: a view the model never saw would not help)."""
    s = int(shift_px)
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (s, s), (s, s)), mode="edge")
    views = [
        padded[:, s + dy : s + dy + h, s + dx : s + dx + w]
        for dy in range(-s, s + 1)
        for dx in range(-s, s + 1)
    ]
    if flip_lr:
        views += [v[:, :, ::-1] for v in views]
    return np.stack(views)


def predict_proba(
    model: MobileNetV2,
    images: np.ndarray,
    batch_size: int = PREDICT_BATCH,
    tta: dict | None = None,
) -> np.ndarray:
    """Return softmax probabilities (N, n_classes) for slices (N, H, W); leaves model in eval mode.

    Slices go through in batches of exactly ``batch_size`` (the last one padded), so that the
    forward pass compiles once per architecture, whatever N (and is traced once for all jobs).
    ``tta`` (config evaluate/tta: the keyword arguments of :func:`tta_views`): each slice's
    probabilities are the mean over its test-time views, which steadies a classifier that moves
    with a one-pixel shift of the crop.
    """
    images = np.asarray(images, np.float32)
    n = images.shape[0]
    if n == 0:
        return np.zeros((0, model.num_classes), np.float32)
    if tta:
        views = tta_views(images, **tta)
        flat = predict_proba(model, views.reshape(-1, *images.shape[1:]), batch_size)
        return flat.reshape(len(views), n, -1).mean(axis=0)
    model.eval()
    graphdef, state = nnx.split(model)
    forward = _forward_program(graphdef, jax.tree.structure(state))
    leaves = on_device(state)
    out = []
    for chunk, real in fixed_batches(images, batch_size):
        out.append(forward(leaves, chunk)[:real])
    return np.asarray(jnp.concatenate(out))


def fixed_batches(arrays: np.ndarray, batch_size: int):
    """Yield (chunk of exactly ``batch_size`` rows, number of real rows) over ``arrays``; the last
    chunk is padded with copies of its last row."""
    for start in range(0, len(arrays), batch_size):
        chunk = arrays[start : start + batch_size]
        real = len(chunk)
        if real < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - real, axis=0)])
        yield chunk, real
