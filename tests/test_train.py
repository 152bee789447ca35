"""Augmentation, training loop, prediction and save/load (tiny widths, 32x32, a few steps)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gynmri.evaluation.confusion import macro_recall
from gynmri.training.augment import augment_batch
from gynmri.training.checkpoints import HISTORY_COLUMNS
from gynmri.training.loop import fit
from gynmri.training.sampler import BatchSampler, class_tables
from gynmri.training.step import predict_proba
from gynmri.training.weights import load_model, save_model

SIZE = 32
MODEL_CFG = {"width": 0.35, "stem": "single", "depthwise": "shifted", "bn_momentum": 0.9}
TRAIN_CFG = {
    "batch_size": 8,
    "epochs": 2,
    "images_per_epoch": 16,
    "learning_rate": 1e-3,
    "weight_decay": 1e-4,
    "seed": 3,
    "augment": {
        "rotate_deg": 10,
        "flip_lr": True,
        "scale": [0.9, 1.1],
        "translate_frac": 0.05,
        "contrast": 0.1,
        "intensity": 0.1,
    },
}


def _data(n: int = 30, n_classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    images = rng.standard_normal((n, SIZE, SIZE)).astype(np.float32) + labels[:, None, None]
    return images, labels


@pytest.fixture(scope="module")
def trained():
    images, labels = _data()
    lines: list[str] = []
    model, history = fit(
        images, labels, 3, MODEL_CFG, TRAIN_CFG, images[:10], labels[:10], log=lines.append
    )
    return model, history, lines, images


# --- augment ---------------------------------------------------------------------------------


def _images(n: int = 4) -> jax.Array:
    return jax.random.normal(jax.random.key(0), (n, 20, 24))


def test_zero_strength_is_identity():
    x = _images()
    cfg = {
        "rotate_deg": 0,
        "flip_lr": False,
        "flip_ud": False,
        "scale": [1.0, 1.0],
        "translate_frac": 0.0,
        "contrast": 0.0,
        "intensity": 0.0,
    }
    for c in (cfg, {}):
        out = augment_batch(jax.random.key(1), x, c)
        np.testing.assert_allclose(np.asarray(out), np.asarray(x), atol=1e-5)


def test_pure_flips_equal_np_flip():
    x = np.asarray(_images(16))
    lr = np.asarray(augment_batch(jax.random.key(2), x, {"flip_lr": True}))
    ud = np.asarray(augment_batch(jax.random.key(2), x, {"flip_ud": True}))
    for out, axis in ((lr, 2), (ud, 1)):
        flipped = [
            np.allclose(o, np.flip(i, axis - 1), atol=1e-5) for o, i in zip(out, x, strict=True)
        ]
        same = [np.allclose(o, i, atol=1e-5) for o, i in zip(out, x, strict=True)]
        assert all(f or s for f, s in zip(flipped, same, strict=True))
        assert 0 < sum(flipped) < len(x)  # random per image, p = 1/2


def test_full_augment_shape_dtype_determinism_and_fill():
    x = _images()
    cfg = {**TRAIN_CFG["augment"], "rotate_deg": 30}
    f = jax.jit(lambda k, im: augment_batch(k, im, cfg))
    a, b = f(jax.random.key(5), x), f(jax.random.key(5), x)
    c = f(jax.random.key(6), x)
    assert a.shape == x.shape and a.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c))
    # Pure translation: uncovered pixels take the image minimum, not zero.
    shifted = augment_batch(jax.random.key(7), x + 10.0, {"translate_frac": 0.3})
    assert float(shifted.min()) >= float((x + 10.0).min()) - 1e-4


# --- training --------------------------------------------------------------------------------


def test_class_tables_and_missing_class_error():
    table, counts = class_tables(np.array([0, 1, 1, 2, 2, 2]), 3)
    assert counts.tolist() == [1, 2, 3]
    assert table[2, :3].tolist() == [3, 4, 5] and table.shape[1] >= 3
    with pytest.raises(ValueError, match=r"\[1, 3\]"):
        class_tables(np.array([0, 2, 0]), 4)
    images, labels = _data(9)
    with pytest.raises(ValueError, match="no training samples"):
        fit(images, labels % 2, 3, MODEL_CFG, TRAIN_CFG)


def test_batches_have_one_shape_and_are_balanced_and_reproducible():
    # The step's input shape is the batch's, whatever the training set's size: one compilation.
    labels = np.array([0] * 90 + [1] * 10)
    images = np.arange(100, dtype=np.float32)[:, None, None] * np.ones((1, 6, 6), np.float32)
    for n in (100, 37):
        sampler = BatchSampler(images[-n:], labels[-n:], 2, 512, pool=0)
        x, cls, _ = sampler.batch((1, 2), 0)
        assert x.shape == (512, 6, 6) and cls.shape == (512,)
    sampler = BatchSampler(images, labels, 2, 4000, pool=0)
    x, cls, draw = sampler.batch((1, 2), 5)
    # Each image is of the class drawn for it, and the classes are drawn uniformly.
    np.testing.assert_array_equal(labels[x[:, 0, 0].astype(int)], cls)
    assert 0.45 < cls.mean() < 0.55 and not draw.any()
    again = sampler.batch((1, 2), 5)
    np.testing.assert_array_equal(again[0], x)
    assert not np.array_equal(sampler.batch((1, 2), 6)[0], x)
    # A pool draw (c, i) is image table[c, i % counts[c]].
    pooled = BatchSampler(images, labels, 2, 64, pool=7)
    x, cls, draw = pooled.batch((3,), 0)
    assert draw.max() < 7
    expected = pooled.table[cls, draw % pooled.counts[cls]]
    np.testing.assert_array_equal(x[:, 0, 0].astype(int), expected)


def test_balanced_accuracy():
    assert macro_recall(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0])) == pytest.approx(0.5)


def test_fit_history_and_log(trained):
    _, history, lines, _ = trained
    assert list(history.columns) == HISTORY_COLUMNS
    assert history["epoch"].tolist() == [1, 2]
    assert np.isfinite(history[["train_loss", "val_loss", "images_per_second"]].to_numpy()).all()
    assert history["val_balanced_accuracy"].between(0, 1).all()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/2") and lines[1].startswith("epoch 2/2")
    assert lines[2].startswith("training: ") and "of which checkpoints 0.0 s" in lines[2]


def test_fit_is_seeded(trained):
    model, _, _, images = trained
    again, _ = fit(images, _data()[1], 3, MODEL_CFG, TRAIN_CFG, log=lambda _: None)
    for a, b in zip(
        jax.tree.leaves(nnx.state(model)), jax.tree.leaves(nnx.state(again)), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_predict_proba_padding(trained):
    model, _, _, images = trained
    p = predict_proba(model, images[:10])
    assert p.shape == (10, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(predict_proba(model, images[:10], batch_size=4), p, atol=1e-5)


def test_save_load_round_trip(trained, tmp_path):
    model, _, _, images = trained
    save_model(model, tmp_path / "m", {"image_size": [SIZE, SIZE], "model_cfg": MODEL_CFG})
    loaded, meta = load_model(tmp_path / "m")
    assert meta["n_classes"] == 3 and meta["image_size"] == [SIZE, SIZE]
    assert meta["model_cfg"]["stem"] == "single" and loaded.in_channels == 1
    np.testing.assert_allclose(
        predict_proba(loaded, images[:10]), predict_proba(model, images[:10]), atol=1e-6
    )


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_optimizer_matches_optax_adamw_with_cosine_decay(weight_decay):
    """The optimizer whose settings live in its state updates weights as optax.adamw (optax.adam
    without decay) with cosine_decay_schedule does, past the end of the schedule too."""
    import optax

    from gynmri.training.step import make_optimizer

    def net():
        return nnx.Linear(4, 3, rngs=nnx.Rngs(0))

    ours, theirs = net(), net()
    total, rate = 5, 0.05
    schedule = optax.cosine_decay_schedule(rate, total)
    reference = optax.adamw(schedule, weight_decay=weight_decay) if weight_decay else None
    opt = make_optimizer(ours, rate, weight_decay, total)
    ref = nnx.Optimizer(theirs, reference or optax.adam(schedule), wrt=nnx.Param)
    x = jax.random.normal(jax.random.key(1), (8, 4))
    for _ in range(total + 2):
        for model, optimizer in ((ours, opt), (theirs, ref)):
            grads = nnx.grad(lambda m: (m(x) ** 2).mean())(model)
            optimizer.update(model, grads)
    np.testing.assert_allclose(ours.kernel.value, theirs.kernel.value, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.bias.value, theirs.bias.value, rtol=1e-5, atol=1e-7)
    assert not np.allclose(ours.kernel.value, net().kernel.value)  # it did train


def test_one_program_serves_every_learning_rate_and_length():
    """The jitted train step's program does not depend on the optimizer's settings: the
    persistent cache serves a detector and a classifier of other budgets."""
    from gynmri.training.model import MobileNetV2
    from gynmri.training.step import _freeze, _train_step, make_optimizer

    texts = []
    for rate, decay, total in ((1e-3, 0.0, 10), (5e-2, 1e-4, 960)):
        model = MobileNetV2(
            2,
            width=0.35,
            in_channels=1,
            depthwise="shifted",
            bn_momentum=0.9,
            dtype=None,
            rngs=nnx.Rngs(0),
        )
        graphdef, state = nnx.split((model, make_optimizer(model, rate, decay, total)))
        args = (jax.random.key(0), jnp.zeros((4, SIZE, SIZE)), jnp.zeros(4, jnp.int32))
        lowered = _train_step.lower(
            graphdef,
            4,
            _freeze(None),
            1,
            0,
            state,
            *args,
            jnp.zeros(4, jnp.int32),
            jax.random.key(1),
        )
        texts.append(lowered.as_text())
    assert texts[0] == texts[1]
