"""Decision-curve analysis of patient-level probabilities (Vickers & Elkin, 2006).

A threshold probability t says how a clinician weighs harms: treating (operating on, referring)
a patient is worth it when the probability of disease is at least t, i.e. a missed case costs
(1 - t) / t times as much as an unnecessary treatment. Treating the patients with ``p >= t``
then has the **net benefit**

    NB(t) = TP/n - FP/n * t / (1 - t),

true positives per patient, less false positives weighted by the odds of the threshold. A model
is useful at t when its NB exceeds both reference strategies: **treat none** (NB = 0) and
**treat all** (NB = prev - (1 - prev) * t / (1 - t)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gynmri.evaluation.calibration import check_binary

#: The columns of :func:`decision_curve`, in order.
CURVE_COLUMNS = [
    "threshold",
    "net_benefit",
    "treat_all",
    "treat_none",
    "true_positives",
    "false_positives",
    "n",
]


def _thresholds(thresholds) -> np.ndarray:
    """Thresholds as a 1-D float array, each strictly inside (0, 1) (t/(1-t) is finite there)."""
    t = np.atleast_1d(np.asarray(thresholds, float))
    if t.ndim != 1 or not (np.isfinite(t).all() and (t > 0).all() and (t < 1).all()):
        raise ValueError(f"thresholds must lie strictly inside (0, 1), got {thresholds}")
    return t


def default_thresholds() -> np.ndarray:
    """0.01, 0.02, ..., 0.99 (rounded, so 0.07 is the float 0.07 and not 0.07000000000000001)."""
    return np.round(np.arange(1, 100) / 100, 2)


def decision_curve(y, p, thresholds=None) -> pd.DataFrame:
    """Net benefit of treating ``p >= t`` at each threshold t, with the treat-all and treat-none
    references and the counts behind it (columns :data:`CURVE_COLUMNS`).

    ``thresholds`` default to :func:`default_thresholds`; each must lie strictly inside (0, 1).
    """
    y, p = check_binary(y, p)
    t = default_thresholds() if thresholds is None else _thresholds(thresholds)
    n = len(y)
    if n == 0:
        raise ValueError("decision curve of no patients")
    treated = p[None, :] >= t[:, None]  # (thresholds, patients)
    tp = (treated & (y == 1)).sum(axis=1)
    fp = (treated & (y == 0)).sum(axis=1)
    odds = t / (1 - t)  # the harm of a false positive relative to the benefit of a true one
    prev = y.mean()
    return pd.DataFrame(
        {
            "threshold": t,
            "net_benefit": tp / n - fp / n * odds,
            "treat_all": prev - (1 - prev) * odds,
            "treat_none": 0.0,
            "true_positives": tp,
            "false_positives": fp,
            "n": n,
        },
        columns=CURVE_COLUMNS,
    )


def net_benefit(y, p, threshold: float) -> float:
    """Net benefit ``TP/n - FP/n * t/(1-t)`` of treating the patients with ``p >= threshold``."""
    if np.ndim(threshold) != 0:
        raise ValueError(f"net_benefit takes one threshold, got {threshold}")
    return float(decision_curve(y, p, [threshold])["net_benefit"].iloc[0])


def net_benefit_at(curve: pd.DataFrame, thresholds) -> pd.DataFrame:
    """Rows of a :func:`decision_curve` at ``thresholds`` (each matched to the nearest
    threshold of the curve's grid), in the order given; handy for report tables."""
    wanted = _thresholds(thresholds)
    grid = curve["threshold"].to_numpy(float)
    if not len(grid):
        raise ValueError("empty decision curve")
    nearest = np.abs(grid[None, :] - wanted[:, None]).argmin(axis=1)
    return curve.iloc[nearest].reset_index(drop=True)
