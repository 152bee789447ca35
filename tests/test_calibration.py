import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import expit
from sklearn.metrics import brier_score_loss

from gynmri.evaluation.calibration import (
    RECALIBRATION,
    brier,
    calibration_fit,
    calibration_summary,
    expected_calibration_error,
    fit_recalibrator,
    logit,
    multiclass_brier,
    recalibrate_multiclass_out_of_fold,
    recalibrate_out_of_fold,
    reliability_bins,
    scaled_brier,
    smoothed_reliability,
)


def miscalibrated(n=600, seed=0, a=0.5, b=0.6):
    """Predictions p whose true log-odds are ``a + b*logit(p)`` (too extreme, too low)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    y = (rng.random(n) < expit(a + b * logit(p))).astype(int)
    return y, p


def test_logit_clips_then_takes_log_odds():
    assert logit(0.5) == 0.0
    assert logit(0.8) == pytest.approx(np.log(4))
    assert logit(0.0) == pytest.approx(np.log(1e-6 / (1 - 1e-6)))
    assert logit(1.0, eps=1e-3) == pytest.approx(np.log(999))
    assert np.isfinite(logit(np.array([0.0, 1.0]))).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slope_and_intercept_agree_with_statsmodels(seed):
    y, p = miscalibrated(seed=seed)
    x = logit(p)
    binomial = sm.families.Binomial()
    slope_fit = sm.GLM(y, sm.add_constant(x), family=binomial).fit()
    intercept_fit = sm.GLM(y, np.ones(len(y)), family=binomial, offset=x).fit()
    fit = calibration_fit(y, p)
    assert fit["slope"] == pytest.approx(slope_fit.params[1], abs=1e-6)
    assert fit["intercept"] == pytest.approx(intercept_fit.params[0], abs=1e-6)
    assert [fit["slope_lo"], fit["slope_hi"]] == pytest.approx(slope_fit.conf_int()[1], abs=1e-4)
    ci = intercept_fit.conf_int()[0]
    assert [fit["intercept_lo"], fit["intercept_hi"]] == pytest.approx(ci, abs=1e-4)
    # the simulated miscalibration is visible: slope well below 1, intercept above 0
    assert fit["slope_hi"] < 1 and fit["intercept_lo"] > 0


def test_perfectly_calibrated_large_sample():
    y, p = miscalibrated(n=20000, seed=3, a=0.0, b=1.0)
    fit = calibration_fit(y, p)
    assert fit["slope"] == pytest.approx(1, abs=0.05)
    assert fit["intercept"] == pytest.approx(0, abs=0.05)
    assert fit["slope_lo"] < 1 < fit["slope_hi"]
    assert fit["intercept_lo"] < 0 < fit["intercept_hi"]


def test_separation_gives_nan_slope_but_keeps_intercept():
    p = np.linspace(0.05, 0.95, 40)
    y = (p > 0.5).astype(int)  # every positive above every negative: complete separation
    fit = calibration_fit(y, p)
    assert np.isnan([fit["slope"], fit["slope_lo"], fit["slope_hi"]]).all()
    assert np.isfinite([fit["intercept"], fit["intercept_lo"], fit["intercept_hi"]]).all()
    # quasi-separation: classes only overlap in a tie at the cut
    p_quasi = np.r_[p, 0.5, 0.5]
    y_quasi = np.r_[(p > 0.5).astype(int), 0, 1]
    assert np.isnan(calibration_fit(y_quasi, p_quasi)["slope"])
    # one patient on the wrong side lifts the separation: a finite slope again
    y_over = y.copy()
    y_over[[0, -1]] = [1, 0]
    assert np.isfinite(calibration_fit(y_over, p)["slope"])


def test_one_class_gives_nan_everywhere():
    p = np.linspace(0.1, 0.9, 9)
    for y in (np.zeros(9), np.ones(9)):
        fit = calibration_fit(y, p)
        assert set(fit) == {"intercept", "intercept_lo", "intercept_hi"} | {
            "slope",
            "slope_lo",
            "slope_hi",
        }
        assert np.isnan(list(fit.values())).all()


def test_brier_and_scaled_brier_by_hand():
    y = [1, 0, 1, 0]
    p = [0.9, 0.2, 0.6, 0.5]
    # squared errors 0.01, 0.04, 0.16, 0.25 -> mean 0.46 / 4 = 0.115
    assert brier(y, p) == pytest.approx(0.115)
    # prevalence 0.5 -> reference 0.25; 1 - 0.115 / 0.25 = 0.54
    assert scaled_brier(y, p) == pytest.approx(0.54)
    # predicting the prevalence for everyone scores exactly 0
    assert scaled_brier(y, [0.5] * 4) == pytest.approx(0.0)
    assert np.isnan(scaled_brier([1, 1], [0.3, 0.9]))
    assert np.isnan(scaled_brier([0, 0], [0.3, 0.9]))


def test_brier_agrees_with_sklearn():
    y, p = miscalibrated(n=300, seed=4)
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_ece_by_hand():
    y = [0, 1, 1, 0, 1]
    p = [0.05, 0.15, 0.55, 0.58, 1.0]
    # bins of width 0.1: [0,.1): {0.05 -> y 0}; [.1,.2): {0.15 -> 1}; [.5,.6): {0.55, 0.58 -> 1, 0};
    # [.9,1]: {1.0 -> 1} (p = 1 belongs to the last bin)
    # 1/5*|0 - 0.05| + 1/5*|1 - 0.15| + 2/5*|0.5 - 0.565| + 1/5*|1 - 1|
    # = 0.01 + 0.17 + 0.026 + 0 = 0.206
    assert expected_calibration_error(y, p) == pytest.approx(0.206)
    # with 2 bins: [0,.5): {0.05, 0.15} -> 2/5*|0.5 - 0.1| = 0.16;
    # [.5,1]: {0.55, 0.58, 1.0} -> 3/5*|2/3 - 2.13/3| = |2 - 2.13|/5 = 0.026
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.186)


def test_multiclass_brier_by_hand_and_as_sum_of_binary_briers():
    labels = np.array([0, 1, 2])
    probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.0, 0.0, 1.0]])
    # row 0: 0.3^2 + 0.2^2 + 0.1^2 = 0.14; row 1: 0.3^2 + 0.7^2 + 0.4^2 = 0.74; row 2: 0
    # mean (0.14 + 0.74 + 0) / 3 = 0.88 / 3
    assert multiclass_brier(labels, probs) == pytest.approx(0.88 / 3)
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(4), size=50)
    labels = rng.integers(0, 4, 50)
    per_class = sum(brier(labels == k, probs[:, k]) for k in range(4))
    assert multiclass_brier(labels, probs) == pytest.approx(per_class)
    with pytest.raises(ValueError, match="class indices"):
        multiclass_brier([0, 4], probs[:2])


def test_reliability_bins_counts_and_observed():
    y, p = miscalibrated(n=503, seed=6)
    for strategy, bins in [("quantile", 5), ("uniform", 10), ("quantile", 7)]:
        table = reliability_bins(y, p, bins=bins, strategy=strategy)
        assert list(table.columns) == [
            "bin",
            "n",
            "mean_predicted",
            "observed",
            "observed_lo",
            "observed_hi",
        ]
        assert table["n"].sum() == len(y)
        assert (table["observed_lo"] <= table["observed"]).all()
        assert (table["observed"] <= table["observed_hi"]).all()
    table = reliability_bins(y, p, bins=10, strategy="uniform")
    which = np.minimum((p * 10).astype(int), 9)
    for row in table.itertuples():
        assert row.observed == pytest.approx(y[which == row.bin].mean())
        assert row.mean_predicted == pytest.approx(p[which == row.bin].mean())
    assert table["mean_predicted"].is_monotonic_increasing


def test_quantile_bins_equal_counts_and_keep_ties_together():
    y, p = miscalibrated(n=500, seed=7)
    table = reliability_bins(y, p, bins=5)
    assert table["n"].tolist() == [100] * 5
    order = np.argsort(p)
    for row in table.itertuples():  # bins are consecutive runs of 100 by rank
        chunk = order[row.bin * 100 : (row.bin + 1) * 100]
        assert row.observed == pytest.approx(y[chunk].mean())
    # rounded probabilities tie: no value may be split across two bins, so every bin boundary
    # (cumulative count) is a boundary between tie groups, and the events add up likewise
    p_tied = np.round(p, 1)
    table = reliability_bins(y, p_tied, bins=5)
    groups = pd.Series(y).groupby(p_tied).agg(["size", "sum"])  # sorted by p
    assert len(table) > 1 and table["n"].sum() == len(y)
    cut = np.searchsorted(np.cumsum(groups["size"]), np.cumsum(table["n"]))
    np.testing.assert_array_equal(np.cumsum(groups["size"]).to_numpy()[cut], np.cumsum(table["n"]))
    events = np.cumsum(groups["sum"]).to_numpy()[cut]
    np.testing.assert_allclose(np.cumsum(table["observed"] * table["n"]), events)


def test_smoothed_reliability():
    y, p = miscalibrated(n=800, seed=8)
    curve = smoothed_reliability(y, p)
    assert list(curve.columns) == ["predicted", "observed"] and len(curve) == 50
    assert curve["predicted"].iloc[0] == p.min() and curve["predicted"].iloc[-1] == p.max()
    # the data are too extreme: the smoothed curve lies above the diagonal at low p and
    # below it at high p, and rises more slowly than the diagonal
    assert curve["observed"].iloc[0] > curve["predicted"].iloc[0] + 0.1
    assert curve["observed"].iloc[-1] < curve["predicted"].iloc[-1]
    grid = [0.2, 0.5, 0.8]
    assert smoothed_reliability(y, p, grid=grid)["predicted"].tolist() == grid


def test_calibration_summary_keys():
    y, p = miscalibrated(seed=9)
    s = calibration_summary(y, p)
    assert list(s) == [
        "n",
        "events",
        "brier",
        "scaled_brier",
        "ece",
        "intercept",
        "intercept_lo",
        "intercept_hi",
        "slope",
        "slope_lo",
        "slope_hi",
    ]
    assert s["n"] == len(y) and s["events"] == y.sum()
    assert s["brier"] == pytest.approx(brier(y, p))
    assert s["slope"] == pytest.approx(calibration_fit(y, p)["slope"])


@pytest.mark.parametrize("method", RECALIBRATION)
def test_recalibration_is_out_of_fold(method):
    y, p = miscalibrated(n=400, seed=10)
    folds = np.arange(len(y)) % 4
    base = recalibrate_out_of_fold(y, p, folds, method)
    changed = y.copy()
    changed[folds == 0] = 1 - changed[folds == 0]  # flip fold 0's labels
    after = recalibrate_out_of_fold(changed, p, folds, method)
    np.testing.assert_array_equal(after[folds == 0], base[folds == 0])
    assert np.abs(after[folds == 1] - base[folds == 1]).max() > 1e-3
    # and it equals fitting on the other folds by hand
    train = folds != 2
    by_hand = fit_recalibrator(y[train], p[train], method)(p[folds == 2])
    np.testing.assert_allclose(base[folds == 2], by_hand)


def test_platt_fixes_miscalibration_out_of_fold():
    y, p = miscalibrated(n=2000, seed=11)
    folds = np.arange(len(y)) % 5
    q = recalibrate_out_of_fold(y, p, folds, "platt")
    before, after = calibration_fit(y, p), calibration_fit(y, q)
    assert abs(after["slope"] - 1) < abs(before["slope"] - 1) / 3
    assert abs(after["intercept"]) < abs(before["intercept"]) / 3
    assert brier(y, q) < brier(y, p) - 0.005


def test_platt_falls_back_under_separation():
    p = np.linspace(0.05, 0.95, 40)
    y = (p > 0.5).astype(int)
    recal = fit_recalibrator(y, p, "platt")
    out = recal(np.array([0.1, 0.3, 0.5, 0.7, 0.9]))
    assert np.isfinite(out).all() and (np.diff(out) > 0).all()
    assert out[0] < 0.1 and out[-1] > 0.9  # still separates, at a finite slope


def test_isotonic_monotone_and_bounded():
    y, p = miscalibrated(n=600, seed=12)
    folds = np.arange(len(y)) % 3
    q = recalibrate_out_of_fold(y, p, folds, "isotonic")
    assert ((q >= 0) & (q <= 1)).all()
    for fold in range(3):
        in_fold = folds == fold
        ordered = q[in_fold][np.argsort(p[in_fold])]
        assert (np.diff(ordered) >= 0).all()
    # out-of-range inputs are clipped to the fitted ends
    recal = fit_recalibrator(y, p, "isotonic")
    assert recal(np.array([0.0]))[0] == recal(np.array([p.min()]))[0]


@pytest.mark.parametrize("method", RECALIBRATION)
def test_multiclass_recalibration_rows_sum_to_one(method):
    rng = np.random.default_rng(13)
    n, k = 300, 3
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]
    probs = np.exp(5 * logits) / np.exp(5 * logits).sum(axis=1, keepdims=True)  # overconfident
    folds = np.arange(n) % 5
    out = recalibrate_multiclass_out_of_fold(labels, probs, folds, method)
    assert out.shape == (n, k)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert ((out >= 0) & (out <= 1)).all()
    assert multiclass_brier(labels, out) < multiclass_brier(labels, probs)
    # out of fold: fold 0's labels do not reach fold 0's rows
    changed = labels.copy()
    changed[folds == 0] = (changed[folds == 0] + 1) % k
    after = recalibrate_multiclass_out_of_fold(changed, probs, folds, method)
    np.testing.assert_allclose(after[folds == 0], out[folds == 0])


def test_multiclass_all_zero_row_becomes_uniform():
    # fold 1 (the fitting fold of fold 0): for each class k every patient with p_k <= 0.4 is
    # not of class k, so each isotonic map is 0 at 1/3 and fold 0's uniform row U maps to zeros
    fitting = [
        ([0.9, 0.05, 0.05], 0),
        ([0.05, 0.9, 0.05], 1),
        ([0.05, 0.05, 0.9], 2),
        ([0.5, 0.4, 0.1], 0),
        ([0.4, 0.5, 0.1], 1),
        ([0.55, 0.05, 0.4], 0),
    ]
    test = [([1 / 3] * 3, 0), ([0.8, 0.1, 0.1], 0), ([0.1, 0.8, 0.1], 1), ([0.1, 0.1, 0.8], 2)]
    probs = np.array([row for row, _ in test + fitting])
    labels = np.array([label for _, label in test + fitting])
    folds = np.array([0] * len(test) + [1] * len(fitting))
    for k in range(3):
        assert recalibrate_out_of_fold(labels == k, probs[:, k], folds, "isotonic")[0] == 0
    out = recalibrate_multiclass_out_of_fold(labels, probs, folds, "isotonic")
    np.testing.assert_allclose(out[0], [1 / 3] * 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_recalibration_errors():
    y, p = miscalibrated(n=40, seed=14)
    folds = np.arange(40) % 2
    with pytest.raises(ValueError, match="unknown recalibration method 'beta'"):
        recalibrate_out_of_fold(y, p, folds, "beta")
    with pytest.raises(ValueError, match="unknown recalibration method"):
        fit_recalibrator(y, p, "temperature")
    with pytest.raises(ValueError, match="equal length"):
        recalibrate_out_of_fold(y, p[:-1], folds, "platt")
    with pytest.raises(ValueError, match="one fold per patient"):
        recalibrate_out_of_fold(y, p, folds[:-1], "platt")
    # fold 1's other folds (only fold 0) are all negative
    y_bad = np.where(folds == 0, 0, y)
    with pytest.raises(ValueError, match="fold 1: the other folds hold only one class"):
        recalibrate_out_of_fold(y_bad, p, folds, "isotonic")
    with pytest.raises(ValueError, match="fold 0"):
        recalibrate_out_of_fold(y, p, np.zeros(40, int), "platt")  # no other folds
    labels = np.where(folds == 0, 0, 1 + (np.arange(40) % 3 == 0))
    probs = np.full((40, 3), 1 / 3)
    with pytest.raises(ValueError, match="class 0: fold 0: the other folds hold only one class"):
        recalibrate_multiclass_out_of_fold(labels, probs, folds, "platt")


def test_input_checks():
    with pytest.raises(ValueError, match="0/1"):
        brier([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration_fit([0, 1], [0.1, 1.2])
    with pytest.raises(ValueError, match="strategy"):
        reliability_bins([0, 1], [0.1, 0.2], strategy="kmeans")
