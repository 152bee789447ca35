"""The report's localiser figure: which held-out patients it shows, and that it draws them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.image import imread

from gynmri.io.slices import encode_mask, encode_pixels
from gynmri.report.figures import localiser_sample, plot_localiser_sample

SIZE = 24


def wide_rows(patient: str, label: str, sequence: str, tumour_slices: list[int], n: int = 5):
    """Return a patient's wide table for one sequence: a square tumour on ``tumour_slices``."""
    rows = []
    for k in range(n):
        mask = np.zeros((SIZE, SIZE), bool)
        if k in tumour_slices:
            mask[8:14, 8:14] = True
        image = np.random.default_rng(k).normal(size=(SIZE, SIZE)) + 3 * mask
        rows.append(
            {
                "patient": patient, "label": label, "label_index": 0, "sequence": sequence,
                "series": "1", "slice_index": k, "annotated": bool(mask.any()), "height": SIZE,
                "width": SIZE, "pixels": encode_pixels(image), "mask": encode_mask(mask),
            }
        )  # fmt: skip
    return rows


def test_sample_prefers_patients_annotated_in_every_sequence_per_class():
    rows = (
        wide_rows("Pa", "myoma", "T2axi", [2])  # annotated in one sequence only
        + wide_rows("Pb", "myoma", "T2axi", [2])
        + wide_rows("Pb", "myoma", "DWI", [1, 2])
        + wide_rows("Pc", "sarcoma", "T2axi", [])  # no tumour annotated: never shown
        + wide_rows("Pd", "sarcoma", "DWI", [3])
    )
    wide = pd.DataFrame(rows)
    assert localiser_sample(wide, ["myoma", "sarcoma"]) == ["Pb", "Pd"]
    assert localiser_sample(wide, ["myoma", "sarcoma"], per_class=2) == ["Pb", "Pa", "Pd"]


def test_figure_draws_every_patient_and_sequence(tmp_path):
    wide = pd.DataFrame(
        wide_rows("Pb", "myoma", "T2axi", [2, 3]) + wide_rows("Pb", "myoma", "DWI", [1])
        + wide_rows("Pd", "sarcoma", "T2axi", [3])
    )  # fmt: skip
    kept = np.zeros((5, SIZE, SIZE), bool)
    kept[2:4, 9:14, 9:14] = True
    masks = {"T2axi": {"Pb": kept, "Pd": kept}, "DWI": {"Pb": kept}}
    selection = pd.DataFrame(
        [
            {"patient": p, "sequence": s, "dice": 0.5, "selected": k in (2, 3),
             "annotated": bool(ann)}
            for p, s, slices in [("Pb", "T2axi", [2, 3]), ("Pb", "DWI", [1]), ("Pd", "T2axi", [3])]
            for k in range(5) for ann in [k in slices]
        ]
    )  # fmt: skip
    out = tmp_path / "localiser.png"
    plot_localiser_sample(wide, masks, selection, ["T2axi", "DWI"], ["myoma", "sarcoma"], out)
    image = imread(out)
    # two rows of patients by two columns of sequences, 2.6 x 3.1 inches each at 100 dpi
    assert image.shape[0] > 300 and image.shape[1] > 300
    # the annotation is drawn in red and the localiser's tumour in lime green
    rgb = image[..., :3]
    assert ((rgb[..., 0] > 0.9) & (rgb[..., 1] < 0.2) & (rgb[..., 2] < 0.2)).any()
    assert ((rgb[..., 1] > 0.9) & (rgb[..., 0] < 0.2) & (rgb[..., 2] < 0.2)).any()
