"""Class-activation maps at two depths, the difference-of-logits target, and the measures of
how well a map points at the tumour."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from gynmri.inference.cams import METHODS, class_maps, energy_in_mask, pointing_hit
from gynmri.training.model import build_model, to_nhwc

CFG = {"width": 0.35, "stem": "single", "bn_momentum": 0.9}


@pytest.fixture(scope="module")
def model():
    return build_model(2, CFG, seed=3)


def test_gradcam_is_the_difference_of_the_two_classes_weights(model):
    """With a global-average-pool head, Grad-CAM of 'logit c minus the mean logit' is
    relu(sum_k A_k (W_kc - W_ko) / 2), up to scale: computed here from the features directly."""
    images = np.random.default_rng(0).normal(size=(3, 64, 64)).astype(np.float32)
    model.eval()
    maps = class_maps(model, images, np.array([0, 1, 1]), "gradcam")
    feats = np.asarray(model.features(to_nhwc(jnp.asarray(images), 1)), np.float64)
    kernel = np.asarray(model.classifier.kernel[...], np.float64)
    for i, c in enumerate((0, 1, 1)):
        direct = np.maximum(feats[i] @ (kernel[:, c] - kernel[:, 1 - c]), 0)  # (h, w)
        assert maps[i].max() == pytest.approx(1.0) or direct.max() == 0
        # the coarse map's cell with the most evidence is where the upsampled map peaks
        h, w = direct.shape
        r, col = np.unravel_index(np.argmax(maps[i]), maps[i].shape)
        cell = (min(int(r * h / 64), h - 1), min(int(col * w / 64), w - 1))
        assert direct[cell] >= 0.5 * direct.max()


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_full_size_maps_in_0_1(model, method):
    images = np.random.default_rng(1).normal(size=(2, 48, 48)).astype(np.float32)
    maps = class_maps(model, images, 1, method)
    assert maps.shape == (2, 48, 48) and maps.min() >= 0 and maps.max() <= 1


def test_pointing_game_and_energy():
    cam = np.zeros((6, 6))
    cam[1, 1], cam[4, 4] = 1.0, 0.5
    mask = np.zeros((6, 6), bool)
    mask[4:, 4:] = True
    assert not pointing_hit(cam, mask) and pointing_hit(cam, ~mask)
    assert energy_in_mask(cam, mask) == pytest.approx(0.5 / 1.5)
    assert np.isnan(energy_in_mask(np.zeros((6, 6)), mask))
