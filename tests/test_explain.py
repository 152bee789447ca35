"""Grad-CAM (gynmri.inference.explain) and the MobileNetV2 features/head split it relies on."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gynmri.inference.explain import gradcam, overlay_grid_png, overlay_png
from gynmri.training.model import build_model, relu6, to_nhwc

CFG = {"width": 0.35, "stem": "single", "depthwise": "shifted", "bn_momentum": 0.9}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model():
    """A 2-class model in eval mode whose BatchNorm running statistics are calibrated.

    Freshly initialized running statistics (mean 0, variance 1) make eval-mode activations
    vanish (logits ~1e-12) through 50 un-normalized layers; one training-mode pass with
    momentum 0 sets every layer's statistics to those of a real batch instead.
    """
    m = build_model(2, CFG, seed=3)
    bns = [mod for _, mod in nnx.iter_graph(m) if isinstance(mod, nnx.BatchNorm)]
    for bn in bns:
        bn.momentum = 0.0
    m.train()
    graphdef, state = nnx.split(m)
    nnx.update(m, _calibrate(graphdef, state, to_nhwc(jnp.asarray(_images(16, 64, seed=1)), 1)))
    for bn in bns:
        bn.momentum = CFG["bn_momentum"]
    m.eval()
    return m


@partial(jax.jit, static_argnums=(0,))
def _calibrate(graphdef, state, x):
    m = nnx.merge(graphdef, state)
    m(x)  # training mode: updates the running statistics
    return nnx.state(m)


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, size, size)).astype(np.float32)


def _old_call(m, x):
    """MobileNetV2.__call__ as it was before the features/head split (regression reference)."""
    from gynmri.training.model import correct_pad

    pad = correct_pad((x.shape[1], x.shape[2]), 3)
    x = jnp.pad(x.astype(m.dtype), ((0, 0), pad[0], pad[1], (0, 0)))
    x = relu6(m.stem_bn(m.stem_conv(x)))
    for block in m.blocks:
        x = block(x)
    x = relu6(m.head_bn(m.head_conv(x)))
    x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    return m.classifier(x)


# One program per `how`, each returning only its result: returning the features as well would
# change XLA's fusions and, under bfloat16, where intermediates get rounded.
@partial(jax.jit, static_argnums=(0, 1))
def _run(how, graphdef, state, x):
    m = nnx.merge(graphdef, state)
    if how == "call":
        return m(x)
    if how == "split":
        return m.head(m.features(x))
    if how == "features":
        return m.features(x)
    return _old_call(m, x)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_features_head_reproduce_call(model, dtype):
    # The calibrated weights (a fresh model's eval-mode activations are ~0 and would hide any
    # difference); parameters are float32 whatever the compute dtype, so they fit both.
    m = build_model(2, {**CFG, "dtype": dtype})
    nnx.update(m, nnx.state(model))
    m.eval()
    graphdef, state = nnx.split(m)
    x = to_nhwc(jnp.asarray(_images(4, 40)), 1)  # 40 px: 2x2 features, odd padding on the way
    feats = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s).features(x), state, x)
    assert feats.shape == (4, 2, 2, 1280) and feats.dtype == jnp.dtype(dtype)
    split = _run("split", graphdef, state, x)
    old = _run("old", graphdef, state, x)
    assert split.dtype == jnp.float32 and split.shape == (4, 2)
    assert float(jnp.abs(split).max()) > 1e-2
    np.testing.assert_allclose(np.asarray(split), np.asarray(old), rtol=0, atol=0)
    if dtype == "float32":  # __call__ is head(features(x)) by definition; once is enough
        call = _run("call", graphdef, state, x)
        np.testing.assert_allclose(np.asarray(call), np.asarray(old), rtol=0, atol=0)


def test_gradcam_shape_range_deterministic(model):
    model.train()  # gradcam must use eval mode itself and leave the caller's mode alone
    before = jax.tree_util.tree_map(np.asarray, nnx.to_pure_dict(nnx.state(model)))
    x = _images(5, 64)
    cam = gradcam(model, x, 1, batch_size=4)  # 5 images: one full and one padded batch
    assert cam.shape == (5, 64, 64) and cam.dtype == np.float32
    assert np.isfinite(cam).all() and cam.min() >= 0 and cam.max() <= 1
    for c in cam:  # each map is normalized to a peak of 1, or all zero
        assert c.max() == pytest.approx(1.0, abs=1e-6) or not c.any()
        assert c.std() > 0  # a 2x2 map upsampled is not constant
    np.testing.assert_array_equal(gradcam(model, x, 1, batch_size=4), cam)
    # Position in the batch and padding do not change a map (same compiled shape: no recompile).
    np.testing.assert_allclose(
        gradcam(model, x[[4, 0, 1, 2]], 1, batch_size=4)[0], cam[4], atol=1e-6
    )
    # One class per image: the class-1 maps are the int's, the class-0 ones differ.
    mixed = gradcam(model, x, np.array([0, 1, 0, 1, 1]), batch_size=4)
    np.testing.assert_array_equal(mixed[[1, 3, 4]], cam[[1, 3, 4]])
    assert not np.allclose(mixed[0], cam[0])
    assert model.stem_bn.use_running_average is False
    after = jax.tree_util.tree_map(np.asarray, nnx.to_pure_dict(nnx.state(model)))
    jax.tree_util.tree_map(np.testing.assert_array_equal, before, after)
    model.eval()


def test_gradcam_edge_cases(model):
    x = _images(3, 64)
    assert gradcam(model, x[:0], 0).shape == (0, 64, 64)
    with pytest.raises(ValueError, match="class_index"):
        gradcam(model, x, 2)
    with pytest.raises(ValueError, match="class_index"):
        gradcam(model, x, [0, 1])


def test_gradcam_matches_independent_computation(model):
    """Weights = d logit / d features (finite differences), map rebuilt by hand in numpy."""
    model.eval()
    graphdef, state = nnx.split(model)
    x = _images(4, 64, seed=5)
    classes = np.array([0, 1, 1, 0])
    feats = _run("features", graphdef, state, to_nhwc(jnp.asarray(x), 1))
    feats = np.asarray(feats, np.float64)  # (4, 2, 2, 1280)
    n, h, w, c = feats.shape

    # Finite differences of the head on a few feature entries; the head is linear in the
    # features, so central differences are exact up to float32 rounding.
    head = jax.jit(lambda f: nnx.merge(graphdef, state).head(f))
    rng = np.random.default_rng(0)
    eps = 0.05
    grads = {}
    for i, j, ch in rng.integers(0, [h, w, c], size=(8, 3)):
        bump = np.zeros_like(feats, np.float32)
        bump[:, i, j, ch] = eps
        up = np.asarray(head(jnp.asarray(feats + bump, jnp.float32)), np.float64)
        down = np.asarray(head(jnp.asarray(feats - bump, jnp.float32)), np.float64)
        grads[(i, j, ch)] = (up - down)[np.arange(n), classes] / (2 * eps)  # (n,)
    # For global-average-pool + dense, d logit_k / d A[i, j, c] = kernel[c, k] / (h * w)
    # everywhere: the Grad-CAM weight (its spatial mean) is that too.
    kernel = np.asarray(model.classifier.kernel[...], np.float64)  # (C, K)
    weights = kernel[:, classes].T / (h * w)  # (n, C)
    for (_, _, ch), g in grads.items():
        np.testing.assert_allclose(g, weights[:, ch], rtol=2e-3, atol=1e-6)

    coarse = np.maximum(np.einsum("nhwc,nc->nhw", feats, weights), 0)
    up = np.asarray(jax.image.resize(jnp.asarray(coarse), (n, 64, 64), "bilinear"), np.float64)
    peak = up.max(axis=(1, 2), keepdims=True)
    expected = np.where(peak > 0, up / np.where(peak > 0, peak, 1), 0)
    assert (peak > 0).all()
    np.testing.assert_allclose(gradcam(model, x, classes, batch_size=4), expected, atol=2e-5)


def test_gradcam_all_zero_map_stays_zero(model):
    # Negate the class-0 evidence: relu leaves nothing, and the map must be 0, not NaN.
    m = nnx.clone(model)
    m.eval()
    graphdef, state = nnx.split(m)
    x = _images(4, 64, seed=7)
    feats = _run("features", graphdef, state, to_nhwc(jnp.asarray(x), 1))
    kernel = np.asarray(m.classifier.kernel[...]).copy()
    kernel[:, 0] = -np.abs(kernel[:, 0])  # features are >= 0 (relu6), so sum w_c A_c <= 0
    m.classifier.kernel.set_value(jnp.asarray(kernel))
    cam = gradcam(m, x, 0, batch_size=4)
    assert np.asarray(feats).max() > 0
    np.testing.assert_array_equal(cam, 0)


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_overlay_png(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.standard_normal((32, 32)).astype(np.float32)
    heat = np.zeros((32, 32), np.float32)
    heat[8:16, 20:28] = 1.0
    out = overlay_png(image, heat, tmp_path / "sub" / "one.png", title="case 1, malignant")
    assert out == tmp_path / "sub" / "one.png"
    w1, h1 = _png_size(out)
    assert 100 < w1 < 400 and 100 < h1 < 400
    grid = overlay_grid_png([image] * 3, [heat] * 3, tmp_path / "grid.png", ["a", "b", "c"])
    w3, h3 = _png_size(grid)
    assert w3 > 2.5 * w1 and abs(h3 - h1) < 30
    with pytest.raises(ValueError):
        overlay_png(image, heat[:16], tmp_path / "bad.png")
    with pytest.raises(ValueError):
        overlay_grid_png([image] * 2, [heat] * 2, tmp_path / "bad.png", ["only one"])
