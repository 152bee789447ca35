"""Confusion counts and the rates made from them: the one implementation every metric uses.

Patient-level diagnosis (sequences, ensembles, classes, summaries, fusion), the reader study,
the bootstrap and the tumour-slice selection all count true/false positives/negatives here and
derive their rates here (as MONAI's confusion-matrix metrics or nnU-Net's
``compute_tp_fp_fn_tn`` do), so that they cannot disagree.

**Empty classes.** A rate whose denominator is zero is undefined: NaN, never 0 or 1 (sensitivity
without positive cases, specificity without negative cases, PPV without positive calls, NPV
without negative calls, Jaccard with neither truth nor selection). SS-Avg, the mean of
sensitivity and specificity, is NaN unless both are defined: a fold without positive patients
has no SS-Avg (it is not its specificity). Macro means over classes are NaN when a class is
undefined.

Counts are taken along the last axis, so the same functions score one set of calls (1-D, giving
numbers) or many bootstrap resamples at once (2-D, one resample per row, giving arrays).
"""

from __future__ import annotations

import numpy as np

from gynmri.evaluation.stats import wilson_interval

COUNT_COLUMNS = ("tp", "fp", "tn", "fn")
#: Proportions with Wilson intervals: metric -> (counts in the numerator, in the denominator).
PROPORTIONS = {
    "accuracy": (("tp", "tn"), ("tp", "tn", "fp", "fn")),
    "sensitivity": (("tp",), ("tp", "fn")),
    "specificity": (("tn",), ("tn", "fp")),
    "ppv": (("tp",), ("tp", "fp")),
    "npv": (("tn",), ("tn", "fn")),
}


def counts(truth, called, valid=None) -> dict[str, int | np.ndarray]:
    """Return tp, fp, tn, fn of boolean calls against boolean truth, summed along the last axis
    (ints for 1-D input, arrays for 2-D); ``valid`` (broadcast like them): count only these
    (e.g. the patients an ensemble scores, one row per ensemble)."""
    truth, called = np.asarray(truth, bool), np.asarray(called, bool)
    keep = True if valid is None else np.asarray(valid, bool)
    out = {
        "tp": (called & truth & keep).sum(axis=-1),
        "fp": (called & ~truth & keep).sum(axis=-1),
        "tn": (~called & ~truth & keep).sum(axis=-1),
        "fn": (~called & truth & keep).sum(axis=-1),
    }
    return {k: int(v) if np.ndim(v) == 0 else v for k, v in out.items()}


def ratio(numerator, denominator):
    """Return numerator / denominator, NaN where the denominator is zero (see module doc)."""
    num = np.asarray(numerator, float)
    den = np.asarray(denominator, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def rates(c: dict) -> dict:
    """Return accuracy, sensitivity, specificity, SS-Avg, PPV and NPV of confusion counts."""
    out = {
        name: ratio(sum(c[k] for k in num), sum(c[k] for k in den))
        for name, (num, den) in PROPORTIONS.items()
    }
    out["ss_avg"] = (out["sensitivity"] + out["specificity"]) / 2  # NaN unless both defined
    return out


def jaccard(c: dict):
    """Return the Jaccard overlap tp / (tp + fp + fn) of calls and truth."""
    return ratio(c["tp"], c["tp"] + c["fp"] + c["fn"])


def wilson_intervals(c: dict, level: float = 0.95) -> dict:
    """Return ``<metric>_lo``/``<metric>_hi`` Wilson intervals of every proportion in
    :data:`PROPORTIONS` (NaN where the denominator is zero)."""
    out = {}
    for name, (num, den) in PROPORTIONS.items():
        k, n = sum(c[x] for x in num), sum(c[x] for x in den)
        out[f"{name}_lo"], out[f"{name}_hi"] = wilson_interval(k, n, level)
    return out


def macro_recall(labels, predicted) -> float:
    """Return the balanced accuracy of class calls: mean recall over the classes in ``labels``."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    recalls = [rates(counts(labels == k, predicted == k))["sensitivity"] for k in np.unique(labels)]
    return float(np.mean(recalls)) if recalls else float("nan")
