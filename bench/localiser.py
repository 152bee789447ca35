"""Compare tumour segmentation networks as the localiser, on a finished run's wide tables.

    python bench/localiser.py [--results results] [--fold 1] [--networks unet mobile]
                              [--config config/config.yaml] [--set base=8 epochs=4 ...]

For each sequence of the config: trains each network on the fold's training patients (config
``localise`` settings, the network swapped), chooses the slice-area threshold on the training
patients, then localises the fold's test patients and prints per sequence and network: Dice and
HD95 (mm, in-plane x slice index) of the kept 3-D tumour, slice-level sensitivity, specificity
and Jaccard of the selected slices against the annotated ones, median centre error (mm), and
the training time (first epoch includes XLA compilation).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from gynmri.config import load_config, localiser_cfg
from gynmri.io.slices import read_wide, to_images, to_masks
from gynmri.localise import metrics
from gynmri.localise.crossval import by_patient, fit_and_calibrate
from gynmri.localise.locate import locate
from gynmri.localise.train import predict_maps


def _patients(results: Path, fold: int, part: str) -> list[Path]:
    return [
        Path(p)
        for p in (results / "splits" / "wide" / f"fold{fold}_{part}.txt").read_text().split()
    ]


def evaluate(net, wide: pd.DataFrame, threshold: float, mm_per_px: float) -> dict:
    """Return the localiser's figures on the test patients of one sequence."""
    rows = []
    for part in by_patient(wide.sort_values(["patient", "slice_index"])):
        true = to_masks(part)
        loc = locate(predict_maps(net, to_images(part)), threshold)
        scores = metrics.slice_scores(loc.chosen_mask, part["annotated"].to_numpy())
        rows.append(
            {
                "dice": metrics.dice(loc.mask, true),
                "hd95_mm": metrics.hd95(loc.mask, true, (1.0, mm_per_px, mm_per_px)),
                "sensitivity": scores["sensitivity"],
                "specificity": scores["specificity"],
                "jaccard": scores["jaccard"],
                "center_mm": metrics.center_error_mm(loc.center, true[part["annotated"].to_numpy()], mm_per_px),
                "tp": scores["tp"], "fp": scores["fp"], "fn": scores["fn"], "tn": scores["tn"],
            }
        )  # fmt: skip
    t = pd.DataFrame(rows)
    pooled_sens = t.tp.sum() / max(1, t.tp.sum() + t.fn.sum())
    pooled_spec = t.tn.sum() / max(1, t.tn.sum() + t.fp.sum())
    return {
        "patients": len(t),
        "dice": t.dice.mean(),
        "hd95_mm": t.hd95_mm.median(),
        "sensitivity": pooled_sens,
        "specificity": pooled_spec,
        "jaccard": t.jaccard.mean(),
        "center_mm_median": t.center_mm.median(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--fold", type=int, default=1)
    ap.add_argument("--networks", nargs="+", default=["unet", "mobile"])
    ap.add_argument("--sequences", nargs="+", default=None, help="default: the config's")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override detect settings (numbers)",
    )
    args = ap.parse_args()
    config = load_config(args.config)
    mm_per_px = config["harmonize"]["fov_mm"] / config["harmonize"]["size"]
    train_paths = _patients(args.results, args.fold, "train")
    test_paths = _patients(args.results, args.fold, "test")
    out = []
    for sequence in args.sequences or config["sequences"]["use"]:
        train, test = read_wide(train_paths, sequence), read_wide(test_paths, sequence)
        for network in args.networks:
            cfg = localiser_cfg(config["train"], config["detect"], config["model"])
            cfg["network"] = network
            cfg.update(
                {k: float(v) if "." in v else int(v) for k, v in (a.split("=") for a in args.set)}
            )
            t0 = time.perf_counter()
            net, history, threshold = fit_and_calibrate(
                train.sort_values(["patient", "slice_index"]), cfg, config["train"]["augment"],
                log=lambda s: None,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            print(
                f"{sequence} {network}: {seconds:.1f} s, area threshold {threshold:g} px",
                flush=True,
            )
            row = {"sequence": sequence, "network": network, "area_px": threshold}
            row.update(evaluate(net, test, threshold, mm_per_px))
            row.update(train_and_threshold_s=seconds, first_epoch_s=history.seconds.iloc[0])
            out.append(row)
            print(pd.DataFrame([row]).to_string(index=False, float_format="%.3f"), flush=True)
    print(pd.DataFrame(out).to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
