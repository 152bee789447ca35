"""Map overlays and the report's sample of maps (gynmri.inference.explain), and the MobileNetV2
features/head split that the class-activation maps rely on."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gynmri.inference.cam_scores import FoldMaps, Views
from gynmri.inference.explain import overlay_grid_png, overlay_png, plot_cam_sample
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


def test_cam_sample_draws_one_patient_per_class_in_every_sequence(tmp_path):
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 32, 32), bool)
    masks[:, 10:20, 10:20] = True

    def fold(sequence, patients, labels):
        n = len(patients)
        views = Views(patients, np.array(labels), rng.standard_normal((n, 32, 32)), masks[:n])
        maps = {"hirescam": rng.random((n, 32, 32)), "gradcam": np.zeros((n, 32, 32))}
        return FoldMaps(sequence, 0, views, np.array(labels), maps)

    # Pa has no DWI slice: Pb (complete) is drawn for class 0 before it; Pc for class 1
    folds = [fold("T2axi", ["Pa", "Pb", "Pc"], [0, 0, 1]), fold("DWI", ["Pb", "Pc"], [0, 1])]
    one = plot_cam_sample(folds, ["myoma", "sarcoma"], tmp_path / "one.png", "hirescam")
    w, h = _png_size(one)
    assert 400 < w < 800 and 400 < h < 800  # 2 patients x 2 sequences
    two = plot_cam_sample(folds, ["myoma", "sarcoma"], tmp_path / "two.png", "hirescam", 2)
    assert _png_size(two)[1] > 1.3 * h  # a third row: Pa, its DWI panel blank
    with pytest.raises(ValueError, match="no held-out patient"):
        plot_cam_sample([fold("T2axi", [], [])], ["myoma"], tmp_path / "x.png", "hirescam")
