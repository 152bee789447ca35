"""Evaluation at the study's scale: 263 patients, 15 sequences, 6 folds, 32,767 ensembles.

    python bench/evaluate.py                 # config/paper.yaml's evaluate section (2000 resamples)
    python bench/evaluate.py --bootstrap 200 --peer-sample 20

Builds out-of-fold slice predictions as the study would have them (63 sarcoma + 200 myoma
patients of 3 hospitals, 6 folds; hospital protocols that lack sequences: hospital 3 has no
sagittal DWI/ADC, hospital 2 no coronal T2, and 15 % of patients had no contrast), runs the
evaluate rule's computation (gynmri.evaluation.tables.evaluation_tables), and prints its time by
part. The peer, measured in the same run, is the one-ensemble-at-a-time path (pandas combine,
then metrics with bootstrap intervals) on a random sample of ensembles, extrapolated to all.
The last line is ``evaluate_seconds: <n>``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.config import load_config
from gynmri.evaluation.metrics import ensemble_intervals
from gynmri.evaluation.scoring import combinations_of, ensemble_name, patient_scores
from gynmri.evaluation.tables import evaluation_tables

ROOT = Path(__file__).resolve().parents[1]


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "config/paper.yaml"))
    p.add_argument("--bootstrap", type=int, help="resamples (default: the config's)")
    p.add_argument("--slices", type=int, default=12, help="tumour slices per patient and sequence")
    p.add_argument("--peer-sample", type=int, default=40, help="ensembles timed on the old path")
    return p.parse_args()


def study_predictions(sequences: list[str], slices: int, seed: int = 0) -> tuple:
    """Return (slice predictions, folds) of a synthetic study: 200 myoma + 63 sarcoma patients."""
    rng = np.random.default_rng(seed)
    labels = np.array(["myoma"] * 200 + ["sarcoma"] * 63)
    rng.shuffle(labels)
    n = len(labels)
    patients = np.array([f"P{i:03d}" for i in range(n)])
    hospital = rng.integers(1, 4, n)
    folds = pd.DataFrame({"patient": patients, "fold": rng.permutation(np.arange(n) % 6)})
    lacks = {3: {"DWIsag", "ADCsag"}, 2: {"T2cor"}}
    no_contrast = rng.random(n) < 0.15
    quality = {s: rng.uniform(0.5, 1.5) for s in sequences}  # how well each sequence separates
    shared = rng.normal(0, 0.6, n)  # what every sequence of a patient shares (the tumour)
    frames = []
    for s in sequences:
        has = np.array([s not in lacks.get(h, ()) for h in hospital])
        if s.startswith("CE"):
            has &= ~no_contrast
        idx = np.flatnonzero(has)
        k = rng.integers(max(1, slices // 2), slices + slices // 2 + 1, len(idx))
        rows = np.repeat(idx, k)
        exam = rng.normal(0, 0.8, n)  # this sequence's error on each patient
        signal = (labels[rows] == "sarcoma") * quality[s] + shared[rows] + exam[rows]
        signal = signal + rng.normal(0, 1, len(rows))  # slice to slice
        p = 1 / (1 + np.exp(-(signal - 1.0)))
        frames.append(
            pd.DataFrame(
                {
                    "patient": patients[rows],
                    "sequence": s,
                    "fold": folds["fold"].to_numpy()[rows],
                    "label": labels[rows],
                    "p_myoma": 1 - p,
                    "p_sarcoma": p,
                }
            )  # fmt: skip
        )
    return pd.concat(frames, ignore_index=True), folds


def peer_seconds(predictions, cfg, sequences, sample: int, seed: int = 1) -> float:
    """Return the one-ensemble-at-a-time path's seconds per ensemble (combine, point metrics and
    bootstrap intervals, binary and macro), on ``sample`` random ensembles."""
    task, ev = cfg["task"], cfg["evaluate"]
    scores = patient_scores(predictions, task["classes"], ev["aggregate"])
    combos = list(combinations_of(sequences))
    pick = np.random.default_rng(seed).choice(len(combos), sample, replace=False)
    t0 = time.perf_counter()
    for i in pick:
        ensemble_intervals(
            scores, ensemble_name(combos[i]), task["classes"], task["positive"], ev["threshold"],
            ev["combine"], ev["bootstrap"], ev["seed"], ev["threshold_rule"],
        )  # fmt: skip
    return (time.perf_counter() - t0) / sample


def main() -> None:
    args = _args()
    cfg = load_config(args.config)
    if args.bootstrap is not None:
        cfg["evaluate"]["bootstrap"] = args.bootstrap
    sequences, ev = cfg["sequences"]["use"], cfg["evaluate"]
    predictions, folds = study_predictions(sequences, args.slices)
    n_ens = 2 ** len(sequences) - 1
    print(
        f"{predictions['patient'].nunique()} patients, {len(sequences)} sequences, "
        f"{len(predictions)} slice predictions, {n_ens} ensembles, bootstrap {ev['bootstrap']}, "
        f"detail for the top {ev['top_ensembles']}"
    )
    t0 = time.perf_counter()
    tables = evaluation_tables(predictions, folds, cfg["task"], sequences, ev)
    seconds = time.perf_counter() - t0
    ens = tables["ensembles"]
    detailed = int((ens["n_boot"] > 0).sum()) if "n_boot" in ens else 0
    print(f"ensembles table: {len(ens)} rows, {detailed} with bootstrap intervals")
    print("best 3:\n" + ens.head(3)[["ensemble", "n", "ss_avg", "auc", "auc_lo", "auc_hi"]]
          .to_string(index=False))  # fmt: skip
    per = peer_seconds(predictions, cfg, sequences, args.peer_sample)
    print(f"peer (one ensemble at a time, as before): {per:.3f} s per ensemble -> "
          f"{per * n_ens:.0f} s for {n_ens} (from {args.peer_sample} timed)")  # fmt: skip
    print(f"ratio: {per * n_ens / seconds:.1f} (peer seconds / ours)")
    print(f"evaluate_seconds: {seconds:.2f}")


if __name__ == "__main__":
    main()
