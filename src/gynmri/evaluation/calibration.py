"""Calibration of patient-level probabilities, and recalibration out of fold.

- :func:`calibration_fit`: the calibration **slope** b of ``y ~ a + b*logit(p)`` (1 is ideal;
  below 1 the predictions are too extreme, above 1 too modest) and the **intercept**
  ("calibration-in-the-large") a of ``y ~ a + offset(logit(p))`` (0 is ideal; above 0 the
  predictions are too low on average), each with a 95% Wald interval.
- :func:`brier`: mean squared error of the probabilities; :func:`scaled_brier` compares it with
  always predicting the prevalence (1 is perfect, 0 no better than the prevalence).
- :func:`expected_calibration_error`: the count-weighted mean |observed - predicted| over
  equal-width probability bins.
- :func:`reliability_bins` / :func:`smoothed_reliability`: the reliability diagram, binned (with
  Wilson intervals) or smoothed (lowess).
- :func:`multiclass_brier`: the Brier score of K-class probability rows.
- :func:`fit_recalibrator`, :func:`recalibrate_out_of_fold`: Platt scaling or isotonic regression,
  fitted on the other folds only so that no patient's recalibration has seen that patient.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from gynmri.evaluation.stats import wilson_interval

log = logging.getLogger(__name__)

#: Recalibration methods of :func:`fit_recalibrator`.
RECALIBRATION = ("platt", "isotonic")
_FIT_KEYS = ("intercept", "intercept_lo", "intercept_hi", "slope", "slope_lo", "slope_hi")


def logit(p, eps: float = 1e-6) -> np.ndarray:
    """Log-odds of ``p``, clipped to ``[eps, 1 - eps]`` first (p = 0 or 1 would be infinite)."""
    p = np.clip(np.asarray(p, float), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def check_binary(y, p) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y, p)`` as 1-D float arrays after checking y is 0/1 and p lies in [0, 1]."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    if y.ndim != 1 or y.shape != p.shape:
        raise ValueError(f"y and p must be 1-D and of equal length ({y.shape}, {p.shape})")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y must hold 0/1 (or boolean) outcomes")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("p must hold probabilities in [0, 1]")
    return y, p


def _newton(X: np.ndarray, y: np.ndarray, offset, max_iter: int = 100, tol: float = 1e-10):
    """Maximum-likelihood logistic regression by Newton-Raphson (= IRLS for the logit link).

    Returns ``(coef, covariance)``, or None when it does not converge (separation drives the
    coefficients to infinity, so the steps never shrink) or the information matrix is singular.
    """

    def loglik(beta):
        eta = X @ beta + offset
        return np.sum(y * eta - np.logaddexp(0, eta))

    beta = np.zeros(X.shape[1])
    ll = loglik(beta)
    for _ in range(max_iter):
        mu = expit(X @ beta + offset)
        try:
            cov = np.linalg.inv(X.T @ (X * (mu * (1 - mu))[:, None]))  # inverse information
        except np.linalg.LinAlgError:
            return None
        step = cov @ (X.T @ (y - mu))
        if not np.isfinite(step).all():
            return None
        if np.max(np.abs(step)) < tol:
            return beta + step, cov
        # halve the step until the (concave) log-likelihood does not drop: plain Newton can
        # overshoot from a poor start when logit(p) is extreme
        t = 1.0
        while loglik(beta + t * step) < ll - 1e-12 and t > 1e-8:
            t /= 2
        beta = beta + t * step
        ll = loglik(beta)
    return None


def _separated(y: np.ndarray, x: np.ndarray) -> bool:
    """True when a cut on ``x`` splits the classes (ties allowed at the cut): complete or
    quasi-complete separation, where the slope of ``y ~ a + b*x`` has no finite MLE."""
    pos, neg = x[y == 1], x[y == 0]
    return bool(pos.min() >= neg.max() or pos.max() <= neg.min())


def calibration_fit(y, p, level: float = 0.95) -> dict:
    """Return the calibration ``intercept`` and ``slope`` with Wald intervals (``_lo``/``_hi``).

    NaN for everything with one class only. Under (quasi-)separation of the classes by ``p``
    the slope is infinite: slope and its interval are NaN, the intercept (which always has an
    MLE with both classes present) is still reported.
    """
    y, p = check_binary(y, p)
    out = dict.fromkeys(_FIT_KEYS, np.nan)
    if not 0 < y.sum() < len(y):
        return out
    x, z = logit(p), norm.ppf(0.5 + level / 2)
    ones = np.ones((len(y), 1))
    fit = _newton(ones, y, offset=x)
    if fit is not None:
        a, se = fit[0][0], np.sqrt(fit[1][0, 0])
        out.update(intercept=a, intercept_lo=a - z * se, intercept_hi=a + z * se)
    fit = None if _separated(y, x) else _newton(np.column_stack([ones, x]), y, offset=0.0)
    if fit is not None:
        b, se = fit[0][1], np.sqrt(fit[1][1, 1])
        out.update(slope=b, slope_lo=b - z * se, slope_hi=b + z * se)
    return {k: float(v) for k, v in out.items()}


def brier(y, p) -> float:
    """Mean squared difference between probability and 0/1 outcome."""
    y, p = check_binary(y, p)
    return float(np.mean((p - y) ** 2))


def scaled_brier(y, p) -> float:
    """``1 - brier / (prev * (1 - prev))``: the Brier score relative to predicting the
    prevalence for everyone; NaN when only one class is present."""
    y, p = check_binary(y, p)
    prev = y.mean()
    return float(1 - brier(y, p) / (prev * (1 - prev))) if 0 < prev < 1 else np.nan


def _uniform_bin(p: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin index on [0, 1]; p = 1 joins the last bin."""
    return np.minimum((p * bins).astype(int), bins - 1)


def expected_calibration_error(y, p, bins: int = 10) -> float:
    """``sum_b n_b/N * |mean(y_b) - mean(p_b)|`` over equal-width bins of [0, 1]."""
    y, p = check_binary(y, p)
    b = _uniform_bin(p, bins)
    # per-bin sums: n_b/N * |sum(y_b)/n_b - sum(p_b)/n_b| = |sum(y_b) - sum(p_b)| / N
    gap = np.abs(np.bincount(b, y, bins) - np.bincount(b, p, bins))
    return float(gap.sum() / len(y)) if len(y) else np.nan


def _quantile_bin(p: np.ndarray, bins: int) -> np.ndarray:
    """Equal-count bins by rank; tied probabilities all go to the bin of the first of them
    (a bin boundary cannot split equal values), then empty bins are dropped."""
    order = np.argsort(p, kind="stable")
    by_rank = np.arange(len(p)) * bins // max(len(p), 1)
    _, first, group = np.unique(p[order], return_index=True, return_inverse=True)
    b = np.empty(len(p), int)
    b[order] = by_rank[first][group]
    return np.unique(b, return_inverse=True)[1]


def reliability_bins(y, p, bins: int = 5, strategy: str = "quantile") -> pd.DataFrame:
    """Reliability diagram in bins: columns ``bin, n, mean_predicted, observed, observed_lo,
    observed_hi`` (Wilson interval of the observed proportion).

    ``strategy``: "quantile" (about equal counts; ties kept in one bin; bins numbered 0..)
    or "uniform" (equal width on [0, 1]; ``bin`` b is [b/bins, (b+1)/bins)). Empty bins are
    left out.
    """
    y, p = check_binary(y, p)
    if strategy not in ("quantile", "uniform"):
        raise ValueError(f"unknown strategy '{strategy}' (quantile, uniform)")
    b = _quantile_bin(p, bins) if strategy == "quantile" else _uniform_bin(p, bins)
    df = pd.DataFrame({"bin": b, "y": y, "p": p}).groupby("bin", sort=True)
    out = df.agg(n=("y", "size"), events=("y", "sum"), mean_predicted=("p", "mean")).reset_index()
    out["observed"] = out["events"] / out["n"]
    out["observed_lo"], out["observed_hi"] = wilson_interval(out["events"], out["n"])
    return out.drop(columns="events")


def smoothed_reliability(y, p, grid=None, frac: float = 2 / 3) -> pd.DataFrame:
    """Lowess (no robustness iterations) of y on p, evaluated on ``grid`` (default 50 points
    spanning the observed p). Columns ``predicted, observed``; a local-linear smoother may
    stray slightly outside [0, 1] at the ends."""
    from statsmodels.nonparametric.smoothers_lowess import lowess

    y, p = check_binary(y, p)
    grid = np.linspace(p.min(), p.max(), 50) if grid is None else np.asarray(grid, float)
    fitted = lowess(y, p, frac=frac, it=0, xvals=grid)
    return pd.DataFrame({"predicted": grid, "observed": fitted})


def _multiclass_inputs(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    """Check labels (n,) are class indices into the K columns of probs (n, K)."""
    labels, probs = np.asarray(labels), np.asarray(probs, float)
    if probs.ndim != 2 or labels.shape != (len(probs),):
        raise ValueError(f"need labels (n,) and probs (n, K) (got {labels.shape}, {probs.shape})")
    k = probs.shape[1]
    if not np.issubdtype(labels.dtype, np.integer) or not np.isin(labels, np.arange(k)).all():
        raise ValueError(f"labels must be integer class indices in [0, {k})")
    return labels, probs


def multiclass_brier(labels, probs) -> float:
    """Mean over patients of ``sum_k (p_k - onehot_k)^2`` (0 perfect, 2 worst)."""
    labels, probs = _multiclass_inputs(labels, probs)
    onehot = np.eye(probs.shape[1])[labels]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def calibration_summary(y, p) -> dict:
    """``n, events, brier, scaled_brier, ece`` and :func:`calibration_fit`'s estimates."""
    y, p = check_binary(y, p)
    return {
        "n": len(y),
        "events": int(y.sum()),
        "brier": brier(y, p),
        "scaled_brier": scaled_brier(y, p),
        "ece": expected_calibration_error(y, p),
        **calibration_fit(y, p),
    }


def _check_method(method: str) -> None:
    if method not in RECALIBRATION:
        raise ValueError(f"unknown recalibration method '{method}' ({', '.join(RECALIBRATION)})")


def fit_recalibrator(y, p, method: str):
    """Fit a recalibration map on ``(y, p)``; return a callable ``p -> recalibrated p``.

    "platt": logistic regression of y on logit(p); "isotonic": monotone step function of p
    (clipped outside the fitted range). Needs both classes.
    """
    _check_method(method)
    y, p = check_binary(y, p)
    if not 0 < y.sum() < len(y):
        raise ValueError("recalibration needs both classes among the fitting patients")
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
        return lambda q: iso.predict(np.asarray(q, float))
    x = logit(p)
    fit = None if _separated(y, x) else _newton(np.column_stack([np.ones_like(x), x]), y, 0.0)
    if fit is not None:
        a, b = fit[0]
        return lambda q: expit(a + b * logit(q))
    # separated classes: the ML slope is infinite (a step function at the cut); a mildly
    # regularised fit (L2 penalty on the slope, C=1) keeps a finite, monotone map instead
    log.debug("platt: classes separated by p, falling back to an L2-regularised fit (C=1)")
    lr = LogisticRegression(C=1.0).fit(x[:, None], y)
    return lambda q: lr.predict_proba(logit(q)[:, None])[:, 1]


def recalibrate_out_of_fold(y, p, folds, method: str) -> np.ndarray:
    """Recalibrate each fold's patients with a map fitted on the OTHER folds' patients only
    (out-of-fold predictions of a cross-validation: a test fold never informs its own map)."""
    _check_method(method)
    y, p = check_binary(y, p)
    folds = np.asarray(folds)
    if folds.shape != y.shape:
        raise ValueError(f"folds must hold one fold per patient ({folds.shape} vs {y.shape})")
    out = np.full(len(y), np.nan)
    for fold in np.unique(folds):
        test = folds == fold
        if len(np.unique(y[~test])) < 2:
            raise ValueError(
                f"fold {fold}: the other folds hold only one class (or no patients), "
                "nothing to fit a recalibration on"
            )
        out[test] = fit_recalibrator(y[~test], p[~test], method)(p[test])
    return out


def recalibrate_multiclass_out_of_fold(labels, probs, folds, method: str) -> np.ndarray:
    """One-vs-rest :func:`recalibrate_out_of_fold` per class, rows renormalised to sum 1 (a row
    recalibrated to all zeros, possible with isotonic maps, becomes uniform)."""
    _check_method(method)
    labels, probs = _multiclass_inputs(labels, probs)
    out = np.empty_like(probs)
    for k in range(probs.shape[1]):
        try:
            out[:, k] = recalibrate_out_of_fold(labels == k, probs[:, k], folds, method)
        except ValueError as err:
            raise ValueError(f"class {k}: {err}") from err
    total = out.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, out / total, 1.0 / probs.shape[1])
