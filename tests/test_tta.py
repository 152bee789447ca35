"""Test-time augmentation of the classifier's predictions (config evaluate/tta)."""

import jax
import numpy as np
import pytest
from conftest import keras_net
from flax import nnx

from gynmri.training.step import predict_proba, tta_views


def test_views_are_the_shifted_and_mirrored_slices():
    images = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    views = tta_views(images, shift_px=1)
    assert views.shape == (9, 2, 5, 6)
    np.testing.assert_array_equal(views[4], images)  # (dy, dx) = (0, 0) in the middle
    # (dy, dx) = (1, 0): the slice moved up by one row, its last row repeated
    np.testing.assert_array_equal(views[7][:, :-1], images[:, 1:])
    np.testing.assert_array_equal(views[7][:, -1], images[:, -1])
    mirrored = tta_views(images, shift_px=1, flip_lr=True)
    assert mirrored.shape == (18, 2, 5, 6)
    np.testing.assert_array_equal(mirrored[13], images[:, :, ::-1])


def test_tta_probabilities_are_the_mean_over_the_views():
    model = keras_net(2, width=0.35, in_channels=1, seed=3)
    # a fresh network answers nearly the same to any slice: perturb its weights so that the
    # slice matters, and scale its head down so that the softmax does not saturate
    rng = np.random.default_rng(1)
    params = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree.map(lambda p: p + 0.2 * rng.normal(size=p.shape), params))
    model.classifier.kernel.value = model.classifier.kernel.value * 1e-3
    images = np.random.default_rng(0).normal(size=(3, 32, 32)).astype(np.float32)
    got = predict_proba(model, images, tta={"shift_px": 1, "flip_lr": True})
    expected = np.mean([predict_proba(model, v) for v in tta_views(images, 1, True)], axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got.shape == (3, 2) and got.sum(axis=1) == pytest.approx(np.ones(3), abs=1e-5)
    assert np.abs(got - predict_proba(model, images)).max() > 1e-5  # the views change the answer
