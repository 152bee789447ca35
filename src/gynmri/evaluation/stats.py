"""Confidence intervals and paired tests for patient-level diagnostic metrics.

- :func:`wilson_interval`: Wilson score interval of a proportion (accuracy, sensitivity,
  specificity, PPV, NPV); the same numbers as
  ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.
- :func:`bootstrap_ci`: percentile bootstrap over patients (resampled with replacement, seeded)
  for metrics without a closed form (SS-Avg, ROC AUC). Resamples where the metric is undefined
  (e.g. only one class drawn) are skipped and counted.
- :func:`mcnemar_test`: McNemar's test of two classifiers' correctness on the same patients.

Every interval is computed on patients, never on slices.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np
from scipy.stats import norm, rankdata

log = logging.getLogger(__name__)

#: Below this many discordant pairs McNemar's test uses the exact binomial distribution.
MCNEMAR_EXACT_BELOW = 25
#: Bootstrap resamples processed at once by vectorised metrics (bounds memory use).
_CHUNK_CELLS = 2_000_000


def wilson_interval(successes, n, level: float = 0.95):
    """Return the Wilson score interval ``(lo, hi)`` of ``successes`` out of ``n``.

    Works on scalars or arrays (broadcast); ``n == 0`` gives ``(nan, nan)``.
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError(f"successes must lie in [0, n] (got {successes} of {n})")
    z = norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        center = (p + z**2 / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
        lo, hi = np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)
    lo, hi = np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


class Interval(tuple):
    """A ``(lo, hi)`` tuple that also says how the bootstrap went.

    ``n_boot``: resamples drawn; ``n_skipped``: resamples where the metric was undefined and
    which were left out of the percentiles.
    """

    def __new__(cls, lo: float, hi: float, n_boot: int = 0, n_skipped: int = 0):
        self = super().__new__(cls, (float(lo), float(hi)))
        self.n_boot, self.n_skipped = int(n_boot), int(n_skipped)
        return self

    @property
    def lo(self) -> float:
        return self[0]

    @property
    def hi(self) -> float:
        return self[1]


def vectorised(fn: Callable) -> Callable:
    """Mark ``fn(Y, S) -> values`` as working on 2-D arrays, one bootstrap resample per row.

    Such a metric returns one value per row, NaN where it is undefined; :func:`bootstrap_ci`
    then evaluates all resamples at once instead of calling the metric once per resample.
    """
    fn.vectorised = True
    return fn


@vectorised
def auc_rows(y: np.ndarray, s: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """ROC AUC of each row (Mann-Whitney U with mid-ranks for ties); NaN with one class only.
    ``valid`` (like ``s``): count only these elements of each row (e.g. the patients an
    ensemble scores)."""
    y = np.asarray(y, bool)
    if valid is not None:
        valid = np.asarray(valid, bool)
        s, y = np.where(valid, s, np.inf), y & valid  # left-out elements rank last, unused
    ranks = rankdata(s, axis=1)
    n_pos = y.sum(axis=1)
    n_neg = (y.shape[1] if valid is None else valid.sum(axis=1)) - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (ranks * y).sum(axis=1) - n_pos * (n_pos + 1) / 2
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def resampled_auc(y_draws: np.ndarray, score: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """ROC AUC of each bootstrap resample without sorting it: equal to :func:`auc_rows` of
    ``(y_draws, score[idx])``, in O(resamples x patients).

    ``idx`` (B, n): the patients drawn by each resample, ``y_draws`` (B, n): their truth,
    ``score`` (N,): every patient's score. The scores are ranked once; each resample's counts
    per rank give its Mann-Whitney U (ties count one half).
    """
    y_draws, idx = np.asarray(y_draws, bool), np.asarray(idx)
    _, rank = np.unique(np.asarray(score, float), return_inverse=True)
    levels = int(rank.max()) + 1 if rank.size else 1
    cell = (np.arange(len(idx))[:, None] * levels + rank[idx]).ravel()
    size = len(idx) * levels
    drawn = np.bincount(cell, minlength=size).reshape(len(idx), levels)
    pos = np.bincount(cell, weights=y_draws.ravel(), minlength=size).reshape(len(idx), levels)
    neg = drawn - pos
    neg_below = np.cumsum(neg, axis=1) - neg
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def from_indices(fn: Callable) -> Callable:
    """Mark ``fn(y_draws, score, idx) -> values`` (see :func:`resampled_auc`) for
    :func:`bootstrap_ci`: it gets the drawn truth, every patient's score and the indices."""
    fn.from_indices = True
    return fn


resampled_auc = from_indices(resampled_auc)


def bootstrap_indices(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """Return the ``(n_boot, n)`` patient indices of the seeded bootstrap resamples."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_ci(
    y_true, score, metric_fn: Callable, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Return the percentile bootstrap interval ``(lo, hi)`` of ``metric_fn(y_true, score)``.

    Patients (the elements of ``y_true``/``score``) are resampled with replacement ``n_boot``
    times from ``numpy.random.default_rng(seed)``; the same seed gives the same interval.
    ``metric_fn(y, s)`` returns a float; resamples where it raises ``ValueError`` or returns
    NaN (one class only, for AUC) are skipped. The result is an :class:`Interval`:
    ``lo, hi = bootstrap_ci(...)``, with ``.n_skipped`` telling how many resamples were
    skipped (also logged). Metrics marked with :func:`vectorised` (e.g. :func:`auc_rows`,
    :func:`gynmri.evaluation.metrics.ss_avg_rows`) or :func:`from_indices` (e.g.
    :func:`resampled_auc`) evaluate all resamples at once. ``(nan, nan)`` when no resample
    gives a value.
    """
    y = np.asarray(y_true)
    s = np.asarray(score)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true and score must be 1-D and of equal length ({y.shape}, {s.shape})")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    n = len(y)
    if n == 0 or n_boot <= 0:
        return Interval(np.nan, np.nan, max(n_boot, 0), max(n_boot, 0))
    idx = bootstrap_indices(n, n_boot, seed)
    step = max(1, _CHUNK_CELLS // n)
    if getattr(metric_fn, "from_indices", False):
        values = np.concatenate(
            [metric_fn(y[idx[i : i + step]], s, idx[i : i + step]) for i in range(0, n_boot, step)]
        ).astype(float)
    elif getattr(metric_fn, "vectorised", False):
        values = np.concatenate(
            [metric_fn(y[idx[i : i + step]], s[idx[i : i + step]]) for i in range(0, n_boot, step)]
        ).astype(float)
    else:
        values = np.full(n_boot, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns on one-class resamples
            for i, rows in enumerate(idx):
                try:
                    values[i] = metric_fn(y[rows], s[rows])
                except ValueError:
                    pass
    valid = values[~np.isnan(values)]
    skipped = n_boot - len(valid)
    if skipped:
        log.info("bootstrap: %d of %d resamples skipped (metric undefined)", skipped, n_boot)
    if not len(valid):
        return Interval(np.nan, np.nan, n_boot, skipped)
    lo, hi = np.quantile(valid, [(1 - level) / 2, (1 + level) / 2])
    return Interval(lo, hi, n_boot, skipped)


def mcnemar_test(correct_a, correct_b) -> dict:
    """Return McNemar's test of two raters' correctness on the same patients.

    ``correct_a``/``correct_b``: one boolean per patient, in the same patient order. ``b`` counts
    patients only A got right, ``c`` those only B got right. With ``b + c < 25`` the exact
    binomial test is used (``statistic`` = min(b, c)); otherwise the chi-square statistic with
    continuity correction. Computed by ``statsmodels.stats.contingency_tables.mcnemar``.
    Returns ``dict(n, b, c, statistic, p_value, exact)``.
    """
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(correct_a)
    b_ = np.asarray(correct_b)
    if a.shape != b_.shape or a.ndim != 1:
        raise ValueError(
            f"paired correctness must be 1-D and of equal length ({a.shape}, {b_.shape})"
        )
    for name, arr in (("correct_a", a), ("correct_b", b_)):
        if arr.dtype != bool and not np.isin(arr, [0, 1]).all():
            raise ValueError(f"{name} must be boolean (correct / not correct)")
    a, b_ = a.astype(bool), b_.astype(bool)
    table = np.array([[(a & b_).sum(), (a & ~b_).sum()], [(~a & b_).sum(), (~a & ~b_).sum()]])
    b, c = int(table[0, 1]), int(table[1, 0])
    exact = b + c < MCNEMAR_EXACT_BELOW
    if b + c == 0:  # no discordant pair: no evidence of a difference
        return {"n": len(a), "b": 0, "c": 0, "statistic": 0.0, "p_value": 1.0, "exact": exact}
    result = mcnemar(table, exact=exact, correction=True)
    return {
        "n": len(a),
        "b": b,
        "c": c,
        "statistic": float(result.statistic),
        "p_value": float(result.pvalue),
        "exact": exact,
    }
