"""The tumour segmentation localiser: networks, patch sampling, training, saving."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from gynmri.localise.locate import locate
from gynmri.localise.metrics import dice
from gynmri.localise.networks import build_network, segment_logits
from gynmri.localise.store import load_localiser, save_localiser
from gynmri.localise.train import BalancedPatches, fit_localiser, predict_maps

SMALL = {"network": "unet", "base": 4, "levels": 2, "stem_stride": 2, "bn_momentum": 0.9}
TRAIN = {
    "epochs": 8, "images_per_epoch": 128, "batch_size": 16, "learning_rate": 0.01,
    "weight_decay": 0.0, "tumour_share": 0.5, "seed": 0, "patch": 24,
}  # fmt: skip


def blobs(n: int = 24, size: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return noisy slices (n, size, size), every other one with a bright square 'tumour'."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 0.3, (n, size, size)).astype(np.float32)
    masks = np.zeros((n, size, size), bool)
    for i in range(0, n, 2):
        r, c = rng.integers(6, size - 12, 2)
        masks[i, r : r + 7, c : c + 7] = True
    images[masks] += 2.0
    return images, masks


@pytest.mark.parametrize(
    "cfg",
    [SMALL, {**SMALL, "stem_stride": 1}, {"network": "mobile", "width": 0.35, "decoder": 8}],
    ids=["unet", "unet-full-resolution", "mobile"],
)
def test_networks_give_full_size_logits_for_any_slice_size(cfg):
    net = build_network(cfg)
    outputs = segment_logits(net, jnp.zeros((2, 37, 45)))  # not a multiple of the stride
    assert outputs[0].shape == (2, 37, 45)
    assert [o.shape[1] for o in outputs] == sorted((o.shape[1] for o in outputs), reverse=True)


def test_patches_oversample_tumour_and_hold_a_tumour_pixel():
    _, masks = blobs()
    sampler = BalancedPatches(masks, 16, 0.5, seed=3, patch=12)
    picks = sampler.batch(0)
    cut = sampler.cut(masks, picks)
    assert cut.shape == (16, 12, 12)
    assert cut[:8].any(axis=(1, 2)).all()  # the tumour half holds tumour
    assert not cut[8:].any()  # the rest comes from slices without tumour
    assert all((a == b).all() for a, b in zip(picks, sampler.batch(0), strict=True))


def test_localiser_learns_the_tumour_and_survives_a_save(tmp_path):
    images, masks = blobs()
    net, history = fit_localiser(images, masks, {**SMALL, **TRAIN}, {"flip_lr": True})
    assert list(history.epoch) == list(range(1, 9))
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]
    maps = predict_maps(net, images)
    assert maps.shape == images.shape and ((maps >= 0) & (maps <= 1)).all()
    assert dice(maps >= 0.5, masks) > 0.6  # an untrained network scores ~0
    loc = locate(maps[:3], area_threshold_px=10)  # tumour on slices 0 and 2 (not touching)
    assert loc.found and len(loc.chosen) == 1 and masks[loc.chosen[0]].any()
    save_localiser(net, tmp_path / "model", {**SMALL, **TRAIN}, {"area_threshold_px": 10.0})
    again, meta = load_localiser(tmp_path / "model")
    assert meta["area_threshold_px"] == 10.0 and meta["network_cfg"]["network"] == "unet"
    np.testing.assert_allclose(predict_maps(again, images), maps, atol=1e-6)
