"""Paired tests of two raters' K-class calls on the same patients (reader study, K > 2).

- :func:`stuart_maxwell_test`: marginal homogeneity (do both raters call each class as often?);
- :func:`bowker_test`: symmetry (are disagreements i -> j as frequent as j -> i?);
- :func:`call_table`: the K x K table of paired calls both read.

Both go through ``statsmodels``' ``SquareTable`` and handle the tables it cannot (empty classes,
no disagreement) with a reason in ``note`` instead of a crash or a silent NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import chi2


def _linked(adjacent: np.ndarray) -> bool:
    """Whether the graph of a boolean adjacency matrix is connected."""
    seen, todo = {0}, [0]
    while todo:
        i = todo.pop()
        for j in np.flatnonzero(adjacent[i]):
            if int(j) not in seen:
                seen.add(int(j))
                todo.append(int(j))
    return len(seen) == len(adjacent)


def _untestable(reason: str, df=np.nan) -> dict:
    return {"statistic": np.nan, "df": df, "p_value": np.nan, "note": reason}


_AGREE = {
    "statistic": 0.0,
    "df": 0,
    "p_value": 1.0,
    "note": "no discordant pair: both call every patient alike (p = 1, as for McNemar)",
}


def stuart_maxwell_test(table, classes: list[str]) -> dict:
    """Return the Stuart-Maxwell test of marginal homogeneity of a K x K table of paired calls.

    ``table[i, j]``: patients the first rater called class i and the second class j. The
    statistic is d' S^-1 d over K - 1 classes, d the differences of the row and column margins,
    S their covariance (``statsmodels`` ``SquareTable(table).homogeneity()``; zeros are not
    shifted), chi-square with K - 1 df. A class in no discordant pair (all its patients called
    alike by both raters, or called by neither) has d = 0 and a zero row in S, which makes S
    singular; it is left out (named in ``note``; df = classes kept - 1), which is the test with
    a generalized inverse of S. Not computable (NaN, with the reason in ``note``) without any
    patient, or when the discordant pairs split the kept classes into unlinked groups (S still
    singular; possible from four classes on). No discordant pair at all: statistic 0, p 1.
    Returns dict(statistic, df, p_value, note).
    """
    from statsmodels.stats.contingency_tables import SquareTable

    t = np.asarray(table, float)
    if t.sum() == 0:
        return _untestable("not computable: no patient")
    off = t - np.diag(np.diag(t))
    adjacent = (off + off.T) > 0
    keep = adjacent.any(axis=1)
    if not keep.any():
        return dict(_AGREE)
    note = ""
    if not keep.all():
        left = ", ".join(c for c, k in zip(classes, keep, strict=True) if not k)
        note = f"left out (in no discordant pair): {left}"
    idx = np.flatnonzero(keep)
    if not _linked(adjacent[np.ix_(idx, idx)]):
        return _untestable(
            "not computable: the discordant pairs split the classes into unlinked groups "
            "(singular covariance)",
            len(idx) - 1,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular covariance is answered below
        result = SquareTable(t[np.ix_(idx, idx)], shift_zeros=False).homogeneity()
    statistic, df = float(result.statistic), int(result.df)
    if not np.isfinite(statistic):
        return _untestable("not computable: singular covariance", df)
    # chi2.sf rather than statsmodels' 1 - cdf: keeps small p-values
    return {
        "statistic": statistic,
        "df": df,
        "p_value": float(chi2.sf(statistic, df)),
        "note": note,
    }


def bowker_test(table, classes: list[str]) -> dict:
    """Return Bowker's test of symmetry of a K x K table of paired calls.

    The statistic is the sum over class pairs i < j of (n_ij - n_ji)^2 / (n_ij + n_ji)
    (``statsmodels`` ``SquareTable(table).symmetry()``, zeros not shifted). statsmodels refers it
    to chi-square with K(K - 1)/2 df; a pair without any discordant patient adds nothing to the
    statistic (0/0 counts as 0), so here df counts only the pairs with one (the empty pairs are
    named in ``note``). No discordant pair at all: statistic 0, p 1; no patient: NaN.
    Returns dict(statistic, df, p_value, note).
    """
    from statsmodels.stats.contingency_tables import SquareTable

    t = np.asarray(table, float)
    if t.sum() == 0:
        return _untestable("not computable: no patient")
    upper = np.triu_indices(len(t), 1)
    pairs = (t + t.T)[upper]
    df = int((pairs > 0).sum())
    if df == 0:
        return dict(_AGREE)
    statistic = float(SquareTable(t, shift_zeros=False).symmetry().statistic)
    empty = [f"{classes[i]}/{classes[j]}" for i, j, n in zip(*upper, pairs, strict=True) if n == 0]
    note = (
        f"df counts the class pairs with a discordant patient (none for {', '.join(empty)})"
        if empty
        else ""
    )
    return {
        "statistic": statistic,
        "df": df,
        "p_value": float(chi2.sf(statistic, df)),
        "note": note,
    }


def call_table(calls_a, calls_b, classes: list[str]) -> np.ndarray:
    """Return the K x K counts of paired calls: rows the first rater's class, columns the
    second's, in task order."""
    index = {k: i for i, k in enumerate(classes)}
    t = np.zeros((len(classes), len(classes)), int)
    np.add.at(t, ([index[k] for k in calls_a], [index[k] for k in calls_b]), 1)
    return t
