"""Our nnx MobileNetV2 against keras.applications.MobileNetV2 (Keras 3, JAX backend).

Weights are copied layer by layer from a randomly initialized Keras model (``weights=None``: no
download) with ``load_keras_weights``; BatchNorm moving statistics are set to random values first,
so the eval-mode comparison exercises them too.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported (and never TensorFlow)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from flax import nnx  # noqa: E402

keras = pytest.importorskip(
    "keras", reason="keras is not installed: pip install -e '.[test]' (Keras 3, JAX backend)"
)

from conftest import keras_net  # noqa: E402

from gynmri.training.model import count_parameters  # noqa: E402
from gynmri.training.weights import load_keras_weights  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SIZE = 64  # small input: the architecture (and parameter count) does not depend on it


@pytest.fixture(scope="module")
def keras_model():
    if keras.backend.backend() != "jax":
        pytest.skip(f"Keras backend is {keras.backend.backend()!r}, not 'jax' (set KERAS_BACKEND)")
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        weights=None, input_shape=(SIZE, SIZE, 3), classes=1000, classifier_activation=None
    )
    # Random, non-trivial BatchNorm statistics and affine parameters (fresh ones are 0/1).
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                    rng.normal(0.0, 0.1, beta.shape).astype(np.float32),
                    rng.normal(0.0, 0.1, mean.shape).astype(np.float32),
                    rng.uniform(0.5, 1.5, var.shape).astype(np.float32),
                ]
            )
    return model


def test_parameter_count_equals_keras(keras_model):
    ours = nnx.eval_shape(lambda: keras_net(1000, width=1.0))
    assert keras_model.count_params() == count_parameters(ours) == 3_538_984
    trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    assert trainable == count_parameters(ours, include_batch_stats=False) == 3_504_872


def test_same_logits_as_keras(keras_model):
    # 'shifted' depthwise (the default); test_model shows 'grouped' computes the same function.
    ours = load_keras_weights(keras_net(1000, width=1.0), keras_model)
    ours.eval()
    x = np.random.default_rng(2).standard_normal((4, SIZE, SIZE, 3)).astype(np.float32)
    expected = np.asarray(keras_model(x, training=False))
    got = np.asarray(nnx.jit(lambda m, v: m(v))(ours, jax.numpy.asarray(x)))
    assert got.shape == expected.shape == (4, 1000)
    assert np.abs(expected).max() > 1e-2  # not a comparison of near-zero outputs
    rel = np.abs(got - expected).max() / np.abs(expected).max()
    assert rel < 1e-4, f"max relative error {rel:.2e}"
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))


def test_load_keras_weights_rejects_other_width(keras_model):
    with pytest.raises(ValueError, match="does not fit"):
        load_keras_weights(keras_net(1000, width=0.35), keras_model)
