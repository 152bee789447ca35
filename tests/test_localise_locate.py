"""Tumour localisation from probability maps (gynmri.localise.locate) and its per-patient metrics
(gynmri.localise.metrics): hand-worked cases, brute-force checks and empty-mask edge cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gynmri.localise.locate import choose_area_threshold, locate
from gynmri.localise.metrics import center_error_mm, dice, hd95, slice_scores, surface

RNG = np.random.default_rng(7)
S, W = 12, 32


def disc(center: tuple[float, float], radius: float) -> np.ndarray:
    """Return a (W, W) bool disc."""
    rows, cols = np.mgrid[:W, :W]
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2


def tumour_volume() -> tuple[np.ndarray, np.ndarray]:
    """Return (probabilities, tumour mask): a blob across slices 4-8, whose centre drifts and
    whose radius peaks on slice 6, a brighter but smaller speck on slice 10, faint noise."""
    probs = RNG.uniform(0.0, 0.3, (S, W, W)).astype(np.float32)  # below the threshold
    tumour = np.zeros((S, W, W), bool)
    for s, radius in zip(range(4, 9), (2, 4, 6, 4, 2), strict=True):
        tumour[s] = disc((14 + 0.5 * (s - 4), 17 - 0.5 * (s - 4)), radius)
    probs[tumour] = 0.8
    probs[10, 26:29, 2:5] = 0.99  # 9 pixels: larger max, far smaller summed probability
    return probs, tumour


def test_locate_keeps_the_largest_component_and_its_slices_above_the_area_threshold():
    probs, tumour = tumour_volume()
    loc = locate(probs, area_threshold_px=30)
    assert loc.found
    assert loc.probabilities is probs
    np.testing.assert_array_equal(loc.mask, tumour)  # the speck on slice 10 is dropped
    np.testing.assert_array_equal(loc.area_px, tumour.sum(axis=(1, 2)))
    np.testing.assert_array_equal(loc.chosen, [5, 6, 7])  # radius 4 and 6: >= 30 pixels
    assert loc.chosen.dtype.kind == "i"
    np.testing.assert_array_equal(loc.chosen_mask, np.isin(np.arange(S), [5, 6, 7]))
    rows, cols = np.nonzero(tumour[[5, 6, 7]])[1:]
    np.testing.assert_allclose(loc.center, [rows.mean(), cols.mean()], atol=0.5)
    np.testing.assert_allclose(loc.center, [rows.mean(), cols.mean()], rtol=1e-12)


def test_locate_with_an_area_threshold_above_every_area_keeps_the_largest_slice():
    probs, tumour = tumour_volume()
    loc = locate(probs, area_threshold_px=10_000)
    np.testing.assert_array_equal(loc.chosen, [6])
    rows, cols = np.nonzero(tumour[6])
    np.testing.assert_allclose(loc.center, [rows.mean(), cols.mean()])


def test_locate_with_area_threshold_zero_keeps_every_slice():
    probs, _ = tumour_volume()
    np.testing.assert_array_equal(locate(probs, 0).chosen, np.arange(S))


def test_components_connect_diagonally_across_adjacent_slices():
    probs = np.zeros((3, 8, 8), np.float32)
    probs[0, 2, 2] = probs[1, 3, 3] = probs[2, 4, 4] = 0.9  # a diagonal chain: one component
    probs[0, 7, 7] = 0.95  # alone: smaller summed probability
    loc = locate(probs, 1)
    assert loc.mask.sum() == 3 and not loc.mask[0, 7, 7]
    np.testing.assert_allclose(loc.center, [3, 3])


def test_locate_without_any_pixel_above_threshold_falls_back_to_the_most_probable_slice():
    probs = np.zeros((6, 16, 16), np.float32)
    probs[1, 2, 2] = 0.3
    probs[3, 4, 10] = 0.4
    probs[3, 8, 10] = 0.2  # slice 3 sums to 0.6: weighted centre (16 / 3, 10)
    loc = locate(probs, 5)
    assert not loc.found
    np.testing.assert_array_equal(loc.chosen, [3])
    np.testing.assert_allclose(loc.center, [(4 * 0.4 + 8 * 0.2) / 0.6, 10], rtol=1e-6)
    assert not loc.mask.any() and loc.mask.shape == probs.shape
    np.testing.assert_array_equal(loc.area_px, np.zeros(6))


def test_locate_on_all_zero_probabilities_takes_the_middle_slice_and_image_centre():
    loc = locate(np.zeros((5, 10, 10), np.float32), 5)
    assert not loc.found
    np.testing.assert_array_equal(loc.chosen, [2])
    np.testing.assert_allclose(loc.center, [4.5, 4.5])


def test_locate_refuses_bad_input():
    with pytest.raises(ValueError, match="S, H, W"):
        locate(np.zeros((10, 10)), 5)
    with pytest.raises(ValueError, match="NaN"):
        locate(np.full((2, 4, 4), np.nan), 5)


def test_choose_area_threshold_maximises_pooled_balanced_accuracy():
    areas = [np.array([0, 5, 40, 60, 10]), np.array([0, 30, 50, 0])]
    annotated = [np.array([0, 0, 1, 1, 0], bool), np.array([0, 1, 1, 0], bool)]
    # 30 is the only threshold keeping every tumour slice (30..60) and no other (0..10).
    assert choose_area_threshold(areas, annotated) == 30.0
    assert isinstance(choose_area_threshold(areas, annotated), float)


def test_choose_area_threshold_ties_go_to_the_smallest():
    areas = [np.array([10, 20, 30, 40])]
    annotated = [np.array([0, 1, 0, 1], bool)]
    # balanced accuracy: 0 -> .5, 10 -> .5, 20 -> .75, 30 -> .5, 40 -> .75
    assert choose_area_threshold(areas, annotated) == 20.0
    # without any positive area only 0 is a candidate
    assert choose_area_threshold([np.zeros(3)], [np.array([1, 0, 0], bool)]) == 0.0


def test_choose_area_threshold_agrees_with_brute_force():
    areas = [RNG.integers(0, 60, RNG.integers(5, 30)) * (RNG.random() < 0.9) for _ in range(20)]
    annotated = [(a + RNG.normal(0, 15, len(a))) > 30 for a in areas]
    pooled, truth = np.concatenate(areas), np.concatenate(annotated)

    def balanced(c):
        sel = pooled >= c
        return (sel[truth].mean() + (~sel[~truth]).mean()) / 2

    candidates = sorted({0.0, *pooled[pooled > 0].astype(float)})
    scores = [balanced(c) for c in candidates]
    best = candidates[int(np.argmax(np.round(scores, 12)))]
    assert choose_area_threshold(areas, annotated) == best


def test_choose_area_threshold_refuses_unusable_training_sets():
    with pytest.raises(ValueError, match="both"):
        choose_area_threshold([np.array([1, 2])], [np.array([0, 0], bool)])
    with pytest.raises(ValueError, match="differ"):
        choose_area_threshold([np.array([1, 2])], [np.array([0, 1, 0], bool)])


def test_dice_hand_worked_and_empty():
    assert dice(np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 0], bool)) == 0.5
    assert dice(np.zeros((2, 3), bool), np.zeros((2, 3), bool)) == 1.0
    assert dice(np.ones((2, 3), bool), np.zeros((2, 3), bool)) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        dice(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError, match="bool"):
        dice(np.ones(3), np.ones(3))


def test_hd95_hand_worked():
    px = 0.7
    a, b = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    a[3, 4], b[3, 7] = True, True  # single pixels 3 columns apart
    assert hd95(a, b, (px, px)) == pytest.approx(3 * px)
    a, b = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    a[5, 2:18], b[9, 2:18] = True, True  # parallel lines 4 rows apart: every distance is 4 px
    assert hd95(a, b, (px, px)) == pytest.approx(4 * px)
    assert hd95(a, b, (2.0, px)) == pytest.approx(4 * 2.0)  # rows 2 mm apart
    a3, b3 = np.zeros((8, 10, 10), bool), np.zeros((8, 10, 10), bool)
    a3[2, 3:7, 3:7], b3[5, 3:7, 3:7] = True, True  # one square, 3 slices apart
    assert hd95(a3, b3, (4.0, px, px)) == pytest.approx(3 * 4.0)
    assert hd95(a3, a3, (4.0, px, px)) == 0.0


def test_hd95_of_empty_masks_is_nan():
    full, empty = np.ones((4, 4), bool), np.zeros((4, 4), bool)
    assert np.isnan(hd95(full, empty, (1.0, 1.0)))
    assert np.isnan(hd95(empty, full, (1.0, 1.0)))
    assert np.isnan(hd95(empty, empty, (1.0, 1.0)))
    with pytest.raises(ValueError, match="spacing"):
        hd95(full, full, (1.0, 1.0, 1.0))


def brute_hd95(pred: np.ndarray, true: np.ndarray, spacing: tuple[float, ...]) -> float:
    """HD95 from all pairwise distances between the two surfaces' points."""
    p = np.argwhere(surface(pred)) * np.asarray(spacing)
    t = np.argwhere(surface(true)) * np.asarray(spacing)
    d = np.sqrt(((p[:, None, :] - t[None, :, :]) ** 2).sum(axis=-1))
    return float(np.percentile(np.concatenate([d.min(axis=1), d.min(axis=0)]), 95))


@pytest.mark.parametrize(
    ("shape", "spacing"), [((12, 14), (0.8, 0.8)), ((5, 9, 10), (4.5, 0.7, 0.7))]
)
def test_hd95_agrees_with_brute_force_on_random_masks(shape, spacing):
    for density in (0.1, 0.4, 0.7):
        pred, true = RNG.random(shape) < density, RNG.random(shape) < density
        assert hd95(pred, true, spacing) == pytest.approx(brute_hd95(pred, true, spacing))


def test_slice_scores_hand_worked_and_undefined_rates():
    sel = np.array([1, 1, 0, 0, 1, 0], bool)
    ann = np.array([0, 1, 1, 0, 1, 0], bool)
    r = slice_scores(sel, ann)
    assert {k: r[k] for k in ("tp", "fp", "fn", "tn")} == {"tp": 2, "fp": 1, "fn": 1, "tn": 2}
    assert r["sensitivity"] == pytest.approx(2 / 3)
    assert r["specificity"] == pytest.approx(2 / 3)
    assert r["jaccard"] == pytest.approx(2 / 4)
    none = slice_scores(np.zeros(3, bool), np.zeros(3, bool))
    assert np.isnan(none["sensitivity"]) and np.isnan(none["jaccard"])
    assert none["specificity"] == 1.0
    every = slice_scores(np.ones(3, bool), np.ones(3, bool))
    assert np.isnan(every["specificity"]) and every["sensitivity"] == every["jaccard"] == 1.0
    with pytest.raises(ValueError, match="bool"):
        slice_scores(np.array([4, 5]), np.zeros(8, bool))  # indices, not a mask


def test_center_error_mm():
    true = np.zeros((3, 10, 10), bool)
    true[0, 2, 2] = true[2, 2, 6] = True  # centroid (2, 4) over all slices
    assert center_error_mm(np.array([5.0, 8.0]), true, 0.5) == pytest.approx(2.5)  # 3-4-5
    assert center_error_mm(np.array([2.0, 4.0]), true[0] | true[2], 0.5) == 0.0
    assert np.isnan(center_error_mm(np.array([5.0, 5.0]), np.zeros((3, 10, 10), bool), 0.5))


def test_metrics_of_a_located_tumour():
    probs, tumour = tumour_volume()
    loc = locate(probs, 30)
    assert dice(loc.mask, tumour) == 1.0
    assert hd95(loc.mask, tumour, (5.0, 0.7, 0.7)) == 0.0
    assert center_error_mm(loc.center, tumour, 0.7) < 0.7
    r = slice_scores(loc.chosen_mask, tumour.any(axis=(1, 2)))
    assert (r["tp"], r["fn"], r["fp"]) == (3, 2, 0)


def test_every_pair_of_hd95_arguments_is_symmetric():
    masks = [RNG.random((6, 7)) < 0.3 for _ in range(3)]
    for a, b in itertools.combinations(masks, 2):
        assert hd95(a, b, (1.0, 2.0)) == pytest.approx(hd95(b, a, (1.0, 2.0)))
