"""MobileNetV2 (flax.nnx) against Keras' architecture, and the two depthwise implementations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import keras_net
from flax import nnx

from gynmri.training.model import (
    DepthwiseConv3x3,
    MobileNetV2,
    _make_divisible,
    correct_pad,
    count_parameters,
)


def _abstract(num_classes: int, width: float, in_channels: int = 3) -> MobileNetV2:
    # Shapes only: counting parameters needs no weights.
    return nnx.eval_shape(lambda: keras_net(num_classes, width=width, in_channels=in_channels))


def test_parameter_count_matches_keras_width_1():
    model = _abstract(1000, 1.0)
    # keras.applications.MobileNetV2(weights=None): Total 3,538,984 / Trainable 3,504,872.
    assert count_parameters(model) == 3_538_984
    assert count_parameters(model, include_batch_stats=False) == 3_504_872


def test_parameter_count_width_035():
    model = _abstract(1000, 0.35)
    # Keras summary of MobileNetV2(alpha=0.35, classes=1000): Total params 1,691,208.
    assert count_parameters(model) == 1_691_208
    assert model.stem_conv.kernel.shape == (3, 3, 3, 16)
    assert model.blocks[0].out_channels == 8
    assert model.blocks[-1].out_channels == 112
    assert model.head_conv.kernel.shape == (1, 1, 112, 1280)  # 1280 kept for alpha <= 1


def test_single_channel_stem_and_wide_head():
    assert _abstract(3, 0.5, in_channels=1).stem_conv.kernel.shape == (3, 3, 1, 16)
    assert _abstract(3, 1.4).head_conv.kernel.shape[-1] == _make_divisible(1280 * 1.4) == 1792


def test_make_divisible_and_correct_pad():
    assert _make_divisible(32 * 0.35) == 16  # 8 would be >10% below 11.2
    assert _make_divisible(24) == 24
    assert _make_divisible(int(16 * 0.35)) == 8
    assert correct_pad((32, 32)) == ((0, 1), (0, 1))
    assert correct_pad((33, 32)) == ((1, 1), (0, 1))


def _reference_depthwise(x: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    """Naive TF/Keras 'same' depthwise conv (for stride 2 identical to correct_pad + 'valid')."""
    n, h, w, c = x.shape
    ho, wo = -(-h // stride), -(-w // stride)
    pad_t = max((ho - 1) * stride + 3 - h, 0) // 2
    pad_l = max((wo - 1) * stride + 3 - w, 0) // 2
    out = np.zeros((n, ho, wo, c), np.float64)
    for i in range(ho):
        for j in range(wo):
            for di in range(3):
                for dj in range(3):
                    r, q = i * stride + di - pad_t, j * stride + dj - pad_l
                    if 0 <= r < h and 0 <= q < w:
                        out[:, i, j] += x[:, r, q] * kernel[di, dj, 0]
    return out


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("hw", [(8, 8), (7, 9), (9, 6)])
def test_shifted_equals_grouped_and_reference(stride, hw):
    layer = DepthwiseConv3x3(6, stride, depthwise="grouped", rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, *hw, 6))
    grouped = np.asarray(layer(x))
    layer.depthwise = "shifted"
    shifted = np.asarray(layer(x))
    reference = _reference_depthwise(np.asarray(x), np.asarray(layer.conv.kernel[...]), stride)
    assert grouped.shape == shifted.shape == reference.shape
    np.testing.assert_allclose(shifted, grouped, atol=1e-4)
    np.testing.assert_allclose(shifted, reference, atol=1e-4)


@nnx.jit
def _apply(model: MobileNetV2, x: jax.Array) -> jax.Array:
    # One compiled program per model: eager op-by-op dispatch of a whole net is far slower.
    return model(x)


def test_whole_model_shifted_equals_grouped():
    # 40 -> 20, 10, 5, 3, 2: even and odd maps, stride-2 convs on both. Last map >1x1: at 1x1 with a tiny batch, train-mode BatchNorm
    # divides by a near-zero variance and amplifies float rounding far beyond 1e-4.
    # bn_momentum 0 makes one train-mode pass set running stats to real batch statistics,
    # so the eval-mode comparison is not between near-zero outputs.
    shifted = keras_net(4, width=0.35, depthwise="shifted", bn_momentum=0.0)
    grouped = keras_net(4, width=0.35, depthwise="grouped", bn_momentum=0.0)
    x = jax.random.normal(jax.random.key(2), (4, 40, 40, 3))
    shifted.train()
    grouped.train()
    a = _apply(shifted, x)
    grouped_before = _apply(grouped, x)
    assert a.shape == (4, 4)
    np.testing.assert_allclose(np.asarray(a), np.asarray(grouped_before), atol=1e-4)
    # Same parameter layout: the grouped net takes the shifted net's state verbatim.
    nnx.update(grouped, nnx.state(shifted))
    shifted.eval()
    grouped.eval()
    a, b = np.asarray(_apply(shifted, x)), np.asarray(_apply(grouped, x))
    assert np.abs(a).max() > 1e-2
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_seeded_init_and_single_channel_forward():
    a = keras_net(2, width=0.35, in_channels=1, seed=7)
    b = keras_net(2, width=0.35, in_channels=1, seed=7)
    for x, y in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b)), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    a.eval()
    out = nnx.eval_shape(lambda m, x: m(x), a, jnp.zeros((2, 32, 32, 1)))
    assert out.shape == (2, 2)


def test_unknown_depthwise_mode_is_refused():
    with pytest.raises(ValueError, match="depthwise"):
        keras_net(2, width=0.35, depthwise="fft")


def test_bfloat16_compute_close_to_float32_and_trains():
    from gynmri.training.sampler import BatchSampler
    from gynmri.training.step import make_optimizer, make_train_step

    # The float32 net and input are those of the test above: its compiled eval pass is reused.
    f32 = keras_net(4, width=0.35, bn_momentum=0.0)
    bf16 = keras_net(4, width=0.35, bn_momentum=0.0, dtype="bfloat16")
    # Master weights and BatchNorm statistics stay float32: the two states are interchangeable.
    for a, b in zip(jax.tree.leaves(nnx.state(f32)), jax.tree.leaves(nnx.state(bf16)), strict=True):
        assert a.dtype == b.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Random, non-trivial BatchNorm parameters and running statistics (fresh ones are 1/0/0/1).
    rng = np.random.default_rng(1)
    for _, module in nnx.iter_graph(f32):
        if isinstance(module, nnx.BatchNorm):
            c = module.scale.shape
            module.scale.set_value(jnp.asarray(rng.uniform(0.5, 1.5, c), jnp.float32))
            module.bias.set_value(jnp.asarray(rng.normal(0.0, 0.1, c), jnp.float32))
            module.mean.set_value(jnp.asarray(rng.normal(0.0, 0.1, c), jnp.float32))
            module.var.set_value(jnp.asarray(rng.uniform(0.5, 1.5, c), jnp.float32))
    nnx.update(bf16, nnx.state(f32))
    f32.eval()
    bf16.eval()
    x = jax.random.normal(jax.random.key(3), (4, 40, 40, 3))
    a, b = np.asarray(_apply(f32, x)), np.asarray(_apply(bf16, x))
    assert b.dtype == np.float32 and np.abs(a).max() > 1e-2
    assert np.abs(a - b).max() / np.abs(a).max() < 2e-2  # bfloat16 keeps ~3 significant digits
    np.testing.assert_array_equal(a.argmax(axis=1), b.argmax(axis=1))

    # One training step in bfloat16: finite loss, float32 parameters updated.
    with pytest.raises(ValueError, match="dtype"):
        keras_net(3, width=0.35, dtype="float16")
    bf16.train()
    before = np.asarray(bf16.classifier.kernel[...])
    optimizer = make_optimizer(bf16, 1e-2, 0.0, 10)
    graphdef, state = nnx.split((bf16, optimizer))
    images = np.asarray(jax.random.normal(jax.random.key(4), (6, 32, 32)))
    sampler = BatchSampler(images, np.arange(6) % 4, 4, batch_size=4, pool=0)
    step = make_train_step(graphdef, 4, None, 3)
    state, loss = step(state, jax.random.key(0), *sampler.batch((0,), 0))
    assert np.isfinite(float(loss))
    nnx.update((bf16, optimizer), state)
    after = bf16.classifier.kernel[...]
    assert after.dtype == jnp.float32 and not np.array_equal(np.asarray(after), before)
