"""Compare tumour segmentation networks as the localiser, on a finished run's wide tables.

    python bench/localiser.py [--results results] [--fold 1] [--networks unet mobile]
                              [--config config/config.yaml] [--set base=8 epochs=4 ...]
                              [--carry-from T2axi]

For each sequence of the config: trains each network on the fold's training patients (config
``localise`` settings, the network swapped), chooses the slice-area threshold on the training
patients, then localises the fold's test patients and prints per sequence and network: Dice and
HD95 (mm, in-plane x slice index) of the kept 3-D tumour, slice-level sensitivity, specificity
and Jaccard of the selected slices against the annotated ones, median centre error (mm), and
the training time (first epoch includes XLA compilation). ``--carry-from G``: trains on G only
and scores every other sequence read where G's network finds the tumour, carried by patient
coordinates (config ``detect.guide``), its area threshold chosen on the training patients.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from gynmri.config import load_config, localiser_cfg
from gynmri.io.slices import read_wide, to_images, to_masks
from gynmri.localise import metrics
from gynmri.localise.crossval import by_patient, carried_maps, fit_and_calibrate, guide_parts
from gynmri.localise.locate import choose_area_threshold, locate
from gynmri.localise.train import predict_maps


def _patients(results: Path, fold: int, part: str) -> list[Path]:
    return [
        Path(p)
        for p in (results / "splits" / "wide" / f"fold{fold}_{part}.txt").read_text().split()
    ]


def evaluate(maps_of, wide: pd.DataFrame, threshold: float, mm_per_px: float) -> dict:
    """Return the localiser's figures on the test patients of one sequence (``maps_of``: one
    patient's wide rows -> its tumour probabilities)."""
    rows = []
    for part in by_patient(wide.sort_values(["patient", "slice_index"])):
        true = to_masks(part)
        loc = locate(maps_of(part), threshold)
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


def carried(guide, sequence: str, train: pd.DataFrame, test: pd.DataFrame, mm_per_px) -> dict:
    """Return the figures of ``sequence`` read where the guide's (network, meta) finds the
    tumour; ``train``/``test``: the wide rows of every sequence of the fold's patients."""
    name = guide[1]["sequence"]
    guides = {**guide_parts(train, name), **guide_parts(test, name)}  # patients are disjoint

    def maps_of(part):
        return carried_maps([guide], guides[part["patient"].iloc[0]], part)

    parts = [
        p
        for p in by_patient(train[train["sequence"] == sequence])
        if p["patient"].iloc[0] in guides
    ]
    areas = [locate(maps_of(p), 0.0).area_px for p in parts]
    threshold = choose_area_threshold(areas, [p["annotated"].to_numpy() for p in parts])
    target = test[(test["sequence"] == sequence) & test["patient"].isin(guides)]
    row = {"sequence": sequence, "network": f"carried from {name}", "area_px": threshold}
    return {**row, **evaluate(maps_of, target, threshold, mm_per_px)}


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
    ap.add_argument("--carry-from", default=None, metavar="SEQUENCE", help="see the docstring")
    args = ap.parse_args()
    config = load_config(args.config)
    mm_per_px = config["harmonize"]["fov_mm"] / config["harmonize"]["size"]
    train_paths = _patients(args.results, args.fold, "train")
    test_paths = _patients(args.results, args.fold, "test")
    sequences = args.sequences or config["sequences"]["use"]
    carried_to = []
    if args.carry_from:  # only the guide trains: its network is carried to the others
        carried_to = [s for s in sequences if s != args.carry_from]
        sequences = [args.carry_from]
        train_all, test_all = read_wide(train_paths), read_wide(test_paths)
    out = []
    for sequence in sequences:
        train, test = read_wide(train_paths, sequence), read_wide(test_paths, sequence)
        for network in args.networks:
            cfg = localiser_cfg(config["train"], config["detect"], config["model"])
            cfg["network"] = network
            cfg.update(
                {k: float(v) if "." in v else int(v) for k, v in (a.split("=") for a in args.set)}
            )
            t0 = time.perf_counter()
            net, history, threshold, _ = fit_and_calibrate(
                train.sort_values(["patient", "slice_index"]), cfg, config["train"]["augment"],
                log=lambda s: None,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            print(
                f"{sequence} {network}: {seconds:.1f} s, area threshold {threshold:g} px",
                flush=True,
            )
            row = {"sequence": sequence, "network": network, "area_px": threshold}
            row.update(
                evaluate(
                    lambda p, net=net: predict_maps(net, to_images(p)), test, threshold, mm_per_px
                )
            )
            row.update(train_and_threshold_s=seconds, first_epoch_s=history.seconds.iloc[0])
            out.append(row)
            print(pd.DataFrame([row]).to_string(index=False, float_format="%.3f"), flush=True)
            if sequence == args.carry_from and network == args.networks[0]:
                guide = (net, {"sequence": sequence})
    for sequence in carried_to:
        out.append(carried(guide, sequence, train_all, test_all, mm_per_px))
        print(pd.DataFrame([out[-1]]).to_string(index=False, float_format="%.3f"), flush=True)
    print(pd.DataFrame(out).to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
