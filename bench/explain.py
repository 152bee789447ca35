"""Score class-activation maps against the tumour on a finished run's held-out patients.

    python bench/explain.py [--results results] [--config config/config.yaml] [--folds 0 1 2]

What the workflow writes to ``results/metrics/explanations.tsv``
(:func:`gynmri.inference.cam_scores.score_run`), for the folds asked (all by default; folds
without models are skipped), printed per sequence and method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gynmri.config import load_config
from gynmri.inference.cam_scores import score_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    ap.add_argument("--folds", type=int, nargs="+", default=None, help="default: every fold")
    args = ap.parse_args()
    config = load_config(args.config)
    folds = range(config["folds"]["k"]) if args.folds is None else args.folds
    models = {
        (sequence, fold): args.results / "models" / sequence / f"fold{fold}" / "model"
        for sequence in config["sequences"]["use"]
        for fold in folds
    }
    models = {key: path for key, path in models.items() if path.is_dir()}
    listings = {
        fold: args.results / "splits" / "wide" / f"fold{fold}_test.txt" for _, fold in models
    }
    _, _, summary = score_run(models, listings, config["harmonize"]["size"])
    print(summary.to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
