"""Class-activation maps at two depths, the difference-of-logits target, the measures of how
well a map points at the tumour, and their scores over held-out patients (cam_scores)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from gynmri.inference import cam_scores
from gynmri.inference.cam_scores import (
    SUMMARY_COLUMNS,
    FoldMaps,
    Views,
    per_patient,
    score_run,
    summarise,
    tumour_views,
)
from gynmri.inference.cams import METHODS, class_maps, energy_in_mask, is_flat, pointing_hit
from gynmri.io.slices import encode_mask, encode_pixels, write_wide
from gynmri.training.model import build_model, to_nhwc
from gynmri.training.weights import save_model

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


def test_a_flat_map_points_nowhere():
    mask = np.zeros((6, 6), bool)
    mask[0, 0] = True  # pixel 0, where argmax lands on a constant map
    assert is_flat(np.full((6, 6), 0.7)) and is_flat(np.zeros((6, 6)))
    assert not pointing_hit(np.full((6, 6), 0.7), mask)
    assert not pointing_hit(np.zeros((6, 6)), mask)
    cam = np.zeros((6, 6))
    cam[0, 0] = 1.0
    assert not is_flat(cam) and pointing_hit(cam, mask)


def test_class_maps_check_classes_and_leave_the_model_mode_alone(model):
    images = np.random.default_rng(2).normal(size=(3, 48, 48)).astype(np.float32)
    model.train()
    try:
        maps = class_maps(model, images, np.array([0, 1, 1]), "hirescam")
        assert model.stem_bn.use_running_average is False
    finally:
        model.eval()
    np.testing.assert_allclose(class_maps(model, images, np.array([0, 1, 1]), "hirescam"), maps)
    # one class per image: image 0's map is the class-0 map, whatever the others' classes
    np.testing.assert_allclose(class_maps(model, images, 0, "hirescam")[0], maps[0], atol=1e-6)
    assert class_maps(model, images[:0], 0, "hirescam").shape == (0, 48, 48)
    for bad in (2, -1, [0, 1]):
        with pytest.raises(ValueError, match="classes"):
            class_maps(model, images, bad, "hirescam")
    with pytest.raises(ValueError, match="method"):
        class_maps(model, images, 0, "gradcam++")


# --- scoring against the tumour (gynmri.inference.cam_scores) ---

WIDE, SIZE = 24, 12


def _wide_rows(patient, label, sequence, slices, annotated, box):
    """Wide-table rows of one patient: slice k's pixels all equal k; ``box`` (r0, r1, c0, c1)
    is the tumour on the annotated slices."""
    rows = []
    for k in slices:
        mask = np.zeros((WIDE, WIDE), bool)
        if k in annotated and box is not None:
            r0, r1, c0, c1 = box
            mask[r0:r1, c0:c1] = True
        rows.append(
            {
                "patient": patient, "label": ["myoma", "sarcoma"][label], "label_index": label,
                "sequence": sequence, "series": "s", "slice_index": k, "annotated": k in annotated,
                "height": WIDE, "width": WIDE,
                "pixels": encode_pixels(np.full((WIDE, WIDE), k, np.float32)),
                "mask": encode_mask(mask),
                "plane": "axial", "pixel_mm": 1.0,
                "center_x_mm": 0.0, "center_y_mm": 0.0, "center_z_mm": float(k),
            }
        )  # fmt: skip
    return rows


def test_tumour_views_crop_the_middle_tumour_slice_around_the_tumour():
    wide = pd.DataFrame(
        _wide_rows("Pa", 1, "T2axi", [5, 1, 2, 3, 4, 0], {1, 2, 3}, (14, 18, 3, 7))
        + _wide_rows("Pb", 0, "T2axi", [0, 1], set(), None)  # nothing annotated
        + _wide_rows("Pc", 0, "T2axi", [0, 1], {0}, None)  # annotated, tumour lost: skipped
    )
    views = tumour_views(wide, SIZE)
    assert views.patients == ["Pa"] and views.labels.tolist() == [1]
    assert views.images.shape == (1, SIZE, SIZE) and (views.images[0] == 2).all()  # the middle
    # tumour rows 14-17, cols 3-6: centroid (15.5, 4.5); the crop would start at column -1, so
    # it is shifted inside the slice: rows 10-21, cols 0-11
    expected = np.zeros((SIZE, SIZE), bool)
    expected[4:8, 3:7] = True
    np.testing.assert_array_equal(views.masks[0], expected)


def _fold_maps(maps: dict[str, np.ndarray], called) -> FoldMaps:
    masks = np.zeros((3, 8, 8), bool)
    masks[:, 2:4, 2:4] = True  # the tumour: 4 of 64 pixels
    views = Views(["P1", "P2", "P3"], np.array([0, 1, 1]), np.zeros((3, 8, 8)), masks)
    return FoldMaps("T2axi", 0, views, np.asarray(called), maps)


def test_scores_count_the_correctly_called_patients_only():
    inside, outside = np.zeros((8, 8)), np.zeros((8, 8))
    inside[3, 3], inside[6, 6] = 1.0, 1.0  # peak inside first: a hit, half the energy in
    outside[7, 7], outside[2, 2] = 1.0, 0.5  # peak outside: a miss, a third of the energy in
    maps = {
        "hirescam": np.stack([inside, outside, inside]),
        "gradcam": np.stack([np.full((8, 8), 0.3), np.zeros((8, 8)), np.full((8, 8), 0.3)]),
    }
    # P2 is called wrong: its map (a miss) must not count
    table = per_patient([_fold_maps(maps, [0, 0, 1])])
    assert len(table) == 6 and table["correct"].sum() == 4
    summary = summarise(table)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary["method"].tolist() == ["hirescam", "gradcam"]
    summary = summary.set_index("method")
    hires, flat = summary.loc["hirescam"], summary.loc["gradcam"]
    assert (hires["patients"], hires["patients_total"]) == (2, 3)
    assert hires["pointing_hit_rate"] == 1.0 and hires["energy_in_tumour"] == pytest.approx(0.5)
    assert hires["tumour_share"] == pytest.approx(4 / 64) and hires["flat_maps"] == 0
    # a constant map: no hit, its energy share is the tumour's share of the crop
    assert flat["pointing_hit_rate"] == 0 and flat["flat_maps"] == 1
    assert flat["energy_in_tumour"] == pytest.approx(4 / 64)
    # the patient called wrong would have been a miss
    both = summarise(per_patient([_fold_maps(maps, [0, 1, 1])])).set_index("method")
    assert both.loc["hirescam", "pointing_hit_rate"] == pytest.approx(2 / 3)
    assert both.loc["hirescam", "energy_in_tumour"] == pytest.approx((0.5 + 1 / 3 + 0.5) / 3)


def test_summary_keeps_every_sequence_and_method_when_none_is_scored():
    table = per_patient([_fold_maps({"hirescam": np.zeros((3, 8, 8))}, [1, 0, 0])])
    summary = summarise(table, ["T2axi", "DWI"], ["gradcam", "hirescam"])
    assert summary[["sequence", "method"]].values.tolist() == [
        ["T2axi", "gradcam"], ["T2axi", "hirescam"], ["DWI", "gradcam"], ["DWI", "hirescam"],
    ]  # fmt: skip
    assert (summary["patients"] == 0).all() and summary["pointing_hit_rate"].isna().all()


def test_score_run_explains_each_fold_on_its_held_out_patients(model, tmp_path, monkeypatch):
    """Real model files and wide tables; maps replaced by known ones: HiResCAM peaks at the
    crop's centre (on the tumour), Grad-CAM is flat, stride-16 Grad-CAM peaks in a corner."""

    def fake_maps(model, images, classes, method):
        maps = np.zeros(images.shape, np.float32)
        if method == "hirescam":
            maps[:, SIZE // 2, SIZE // 2] = 1.0
        elif method == "gradcam":
            maps[:] = 1.0
        else:
            maps[:, 0, 0] = 1.0
        return maps

    monkeypatch.setattr(cam_scores, "class_maps", fake_maps)
    save_model(model, tmp_path / "model", {})
    listings = {}
    box = (8, 14, 9, 15)  # a centred tumour
    for fold, patients in enumerate([[("Pa", 0), ("Pb", 1)], [("Pc", 0)]]):
        paths = []
        for patient, label in patients:
            rows = _wide_rows(patient, label, "T2axi", [0, 1, 2], {1}, box)
            rows += _wide_rows(patient, label, "DWI", [0, 1], {0}, box)
            path = tmp_path / f"{patient}.parquet"
            write_wide(pd.DataFrame(rows), path)
            paths.append(str(path))
        listings[fold] = tmp_path / f"fold{fold}_test.txt"
        listings[fold].write_text("\n".join(paths) + "\n")
    models = {("T2axi", 0): tmp_path / "model", ("T2axi", 1): tmp_path / "model"}
    folds, table, summary = score_run(models, listings, SIZE)
    assert [(f.sequence, f.fold, f.views.patients) for f in folds] == [
        ("T2axi", 0, ["Pa", "Pb"]),
        ("T2axi", 1, ["Pc"]),
    ]
    assert set(table["sequence"]) == {"T2axi"} and len(table) == 3 * len(METHODS)
    right = table[table["correct"]]
    assert summary["method"].tolist() == list(METHODS) and len(right) > 0
    assert (summary["patients"] == len(right) // len(METHODS)).all()
    assert (summary["patients_total"] == 3).all()
    rates = summary.set_index("method")["pointing_hit_rate"]
    assert rates.to_dict() == {"gradcam": 0.0, "gradcam16": 0.0, "hirescam": 1.0}
    assert summary["tumour_share"].iloc[0] == pytest.approx(36 / SIZE**2)


def test_report_section_names_the_best_method_of_each_sequence_from_the_table():
    from types import SimpleNamespace

    from gynmri.report.sections import _explanations, best_cam_methods

    rows = [
        ("T2axi", "gradcam", 0.0, 0.10),
        ("T2axi", "gradcam16", 0.5, 0.20),
        ("T2axi", "hirescam", 0.5, 0.25),  # tied pointing, more energy: the best
        ("DWI", "gradcam", 0.0, 0.10),
        ("DWI", "gradcam16", 0.9, 0.30),
        ("DWI", "hirescam", 0.9, 0.30),  # tied on both: both named
        ("T2sag", "hirescam", np.nan, np.nan),  # nobody called right
        ("T2cor", "gradcam", 0.0, 0.10),
        ("T2cor", "hirescam", 0.0, 0.20),  # the most energy, but pointing nowhere
    ]
    ex = pd.DataFrame(rows, columns=["sequence", "method", "pointing_hit_rate", "energy_in_tumour"])
    assert best_cam_methods(ex) == {
        "T2axi": ["hirescam"],
        "DWI": ["gradcam16", "hirescam"],
        "T2cor": [],
    }
    page = "".join(_explanations(SimpleNamespace(explanations=ex, figures={})))
    assert "T2axi: hirescam (50.0 %); DWI: gradcam16 and hirescam (90.0 %); T2cor: none" in page
    assert "Pointing game" in page and "<table" in page
    assert _explanations(SimpleNamespace(explanations=None, figures={})) == []
