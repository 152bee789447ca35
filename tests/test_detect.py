"""Tumour-slice detection: tiles, labels, selection, center, and the wide slices of ingest."""

from pathlib import Path

import numpy as np
import pytest

from gynmri.config import load_config
from gynmri.detection import views as detect
from gynmri.io.deid import DEMO_KEY
from gynmri.io.slices import to_images, to_masks
from gynmri.preprocessing.harmonize import wide_size
from gynmri.preprocessing.ingest import IngestSettings, ingest_patient
from gynmri.preprocessing.sequences import load_rules
from gynmri.synth import SynthSpec, plan_cohort, write_patient

ROOT = Path(__file__).resolve().parents[1]


def test_tiles_cover_the_slice_and_labels_follow_the_mask():
    assert detect.tile_offsets(96, 48, 5).tolist() == [0, 12, 24, 36, 48]
    assert detect.tile_offsets(96, 48, 1).tolist() == [24]
    images = np.random.default_rng(0).normal(size=(3, 96, 96)).astype(np.float32)
    windows = detect.tiles_of(images, 48, 5)
    assert windows.shape == (3, 5, 5, 48, 48)
    np.testing.assert_array_equal(windows[1, 2, 4], images[1, 24:72, 48:96])
    masks = np.zeros((3, 96, 96), bool)
    masks[1, 60:70, 80:90] = True  # a 10 x 10 blob near the right edge, lower half
    labels = detect.tile_labels(masks, 48, 5, 0.02)  # 2 % of 48 x 48 = 46 pixels
    assert not labels[0].any() and not labels[2].any()
    assert labels[1, 3:, 4].all() and not labels[1, :, :2].any()
    over = detect.overview(images, 48)
    assert over.shape == (3, 48, 48) and over[0, 0, 0] == pytest.approx(images[0, :2, :2].mean())
    annotated = np.array([False, True, False])
    x, y = detect.training_set(images, masks, annotated, 48, 5, 0.02)
    assert x.shape == (3 * 10 + 75, 48, 48)
    assert y[:30].tolist() == [0] * 10 + [1] * 10 + [0] * 10  # whole views, by annotation
    assert y[30:].sum() == labels.sum()


def test_selection_takes_the_run_around_the_best_slice_and_finds_the_center():
    scores = np.array([0.1, 0.2, 0.9, 0.95, 0.8, 0.1, 0.1, 0.7, 0.9, 0.2])
    smoothed = detect.smooth(scores)
    assert smoothed[3] == pytest.approx((0.9 + 1.9 + 0.8) / 4)
    chosen = detect.select_slices(scores, 0.5)
    assert chosen.tolist() == [2, 3, 4]  # the other run (7, 8) is not connected to the best
    assert detect.select_slices(np.array([0.1, 0.3, 0.2]), 0.5).tolist() == [1]  # best alone
    tiles = np.zeros((2, 5, 5))
    tiles[:, 3, 4] = 0.9  # tumour around tile (3, 4)
    tiles[:, 3, 3] = 0.6
    center = detect.tumour_center(tiles, 96, 48)
    centers = detect.tile_centers(96, 48, 5)
    assert center[0] == pytest.approx(centers[3])
    assert centers[3] < center[1] < centers[4]  # pulled towards the more confident tile
    assert detect.tumour_center(np.zeros((1, 5, 5)), 96, 48).tolist() == pytest.approx([47.5, 47.5])
    image = np.arange(2 * 96 * 96, dtype=float).reshape(2, 96, 96)
    crops = detect.crop_at(image, np.array([90.0, 2.0]), 48)
    assert crops.shape == (2, 48, 48) and crops[0, 0, 0] == 48 * 96  # clamped inside the slice
    m = detect.slice_metrics(np.array([0, 1, 1, 0], bool), np.array([0, 1, 0, 1], bool))
    assert m["sensitivity"] == pytest.approx(0.5) and m["specificity"] == pytest.approx(0.5)
    assert m["jaccard"] == pytest.approx(1 / 3)


def test_wide_slices_hold_what_the_classifier_sees(tmp_path):
    spec = SynthSpec({"myoma": 1, "sarcoma": 1}, centers=1, seed=3)
    row = plan_cohort(spec).iloc[0]
    write_patient(spec, row, tmp_path / "dicom", tmp_path / "masks")
    config = load_config(ROOT / "config" / "config.yaml")
    result = ingest_patient(
        tmp_path / "dicom" / row.patient_dir,
        tmp_path / "masks" / row.patient_dir,
        case={"patient": "P01", "center": row.center, "label": row.label, "label_index": 0},
        settings=IngestSettings.from_config(config),
        rules=load_rules(ROOT / "config" / "sequences.yaml"),
        secret=DEMO_KEY,
    )
    table, wide = result.slices, result.wide
    size = config["harmonize"]["size"]
    n = wide_size(size, config["harmonize"]["fov_mm"], config["detect"]["fov_mm"])
    assert set(wide["height"]) == {n}
    for sequence in ("T2axi", "DWI"):
        w = wide[wide["sequence"] == sequence].sort_values("slice_index")
        t = table[table["sequence"] == sequence].sort_values("slice_index")
        # the annotated wide slices are exactly the slice table's slices
        assert w.loc[w["annotated"], "slice_index"].tolist() == t["slice_index"].tolist()
        masks = to_masks(w)
        assert masks[w["annotated"].to_numpy()].any(axis=(1, 2)).all()
        # a crop around the tumour center of a wide slice matches the classifier's slice
        k = int(t["slice_index"].iloc[len(t) // 2])
        center = np.argwhere(masks[w["annotated"].to_numpy()]).mean(axis=0)[1:]
        crop = detect.crop_at(to_images(w[w["slice_index"] == k]), center, size)[0]
        classifier = to_images(t[t["slice_index"] == k])[0]
        assert np.corrcoef(crop.ravel(), classifier.ravel())[0, 1] > 0.9
