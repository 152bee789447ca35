"""Score class-activation maps against the tumour on a finished run's held-out patients.

    python bench/explain.py [--results results] [--config config/config.yaml] [--folds 1 2 3]

For each sequence and fold: the fold's classifier, its held-out patients' wide slices; each
patient's middle annotated slice is cropped around the annotation's centroid (the classifier's
view, with the mask on the same grid), classified, and explained for the class it is called by
every method of :mod:`gynmri.inference.cams`. Prints per sequence and method, over the correctly
classified patients: the pointing-game hit rate (map maximum inside the tumour) and the mean
share of the map's energy inside the tumour; and, for scale, the tumour's share of the crop.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.config import load_config
from gynmri.inference.cams import METHODS, class_maps, energy_in_mask, pointing_hit
from gynmri.io.slices import read_wide, to_images, to_masks
from gynmri.localise.locate import crop_at
from gynmri.training.step import predict_proba
from gynmri.training.weights import load_model


def views(wide: pd.DataFrame, size: int):
    """Yield (patient, label_index, crop, mask crop) of each patient's middle annotated slice."""
    for patient, part in wide.sort_values("slice_index").groupby("patient", sort=True):
        annotated = part[part["annotated"]]
        if annotated.empty:
            continue
        masks = to_masks(annotated)
        center = np.argwhere(masks).mean(axis=0)[1:]
        k = len(annotated) // 2
        image = crop_at(to_images(annotated.iloc[[k]]), center, size)[0]
        yield (
            patient,
            int(annotated["label_index"].iloc[0]),
            image,
            crop_at(masks[[k]], center, size)[0],
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--folds", type=int, nargs="+", default=[1])
    args = ap.parse_args()
    config = load_config(args.config)
    size = config["harmonize"]["size"]
    rows = []
    for sequence in config["sequences"]["use"]:
        for fold in args.folds:
            model_dir = args.results / "models" / sequence / f"fold{fold}" / "model"
            if not model_dir.is_dir():
                continue
            model, _ = load_model(model_dir)
            listing = args.results / "splits" / "wide" / f"fold{fold}_test.txt"
            wide = read_wide(listing.read_text().split(), sequence)
            for patient, label, image, mask in views(wide, size):
                called = int(predict_proba(model, image[None]).argmax(axis=1)[0])
                for method in METHODS:
                    cam = class_maps(model, image[None], np.array([called]), method)[0]
                    rows.append(
                        {
                            "sequence": sequence, "method": method, "patient": patient,
                            "correct": called == label, "hit": pointing_hit(cam, mask),
                            "energy": energy_in_mask(cam, mask), "tumour_share": float(mask.mean()),
                        }
                    )  # fmt: skip
    table = pd.DataFrame(rows)
    correct = table[table["correct"]]
    summary = correct.groupby(["sequence", "method"], sort=False).agg(
        patients=("patient", "nunique"),
        pointing_hit_rate=("hit", "mean"),
        energy_in_tumour=("energy", "mean"),
        tumour_share=("tumour_share", "mean"),
    )
    print(summary.to_string(float_format="%.3f"))


if __name__ == "__main__":
    main()
