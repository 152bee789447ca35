import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

from gynmri.evaluation.metrics import ss_avg_rows
from gynmri.evaluation.stats import (
    auc_rows,
    bootstrap_ci,
    bootstrap_indices,
    mcnemar_test,
    resampled_auc,
    wilson_interval,
)


def test_wilson_agrees_with_statsmodels():
    rng = np.random.default_rng(0)
    cases = [(0, 10), (10, 10), (1, 1), (0, 1), (63, 263)]
    cases += [(int(k), int(n)) for n in rng.integers(1, 300, 40) for k in [rng.integers(0, n + 1)]]
    for level in (0.95, 0.9):
        for k, n in cases:
            expect = proportion_confint(k, n, alpha=1 - level, method="wilson")
            assert wilson_interval(k, n, level) == pytest.approx(expect, abs=1e-12)
    ks, ns = np.array([c[0] for c in cases]), np.array([c[1] for c in cases])
    lo, hi = wilson_interval(ks, ns)
    expect = proportion_confint(ks, ns, method="wilson")
    np.testing.assert_allclose(lo, expect[0], atol=1e-12)
    np.testing.assert_allclose(hi, expect[1], atol=1e-12)
    assert all(np.isnan(wilson_interval(0, 0)))
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


def test_wilson_covers_true_sensitivity_about_95_percent():
    rng = np.random.default_rng(1)
    n, p = 60, 0.8
    k = rng.binomial(n, p, size=400)  # 400 simulated studies of 60 positives
    lo, hi = wilson_interval(k, np.full(400, n))
    coverage = np.mean((lo <= p) & (p <= hi))
    assert 0.90 <= coverage <= 0.99


def test_vectorised_auc_matches_sklearn_per_resample():
    rng = np.random.default_rng(2)
    y = rng.random(50) < 0.4
    s = np.round(rng.random(50) + 0.4 * y, 1)  # rounded: ties
    idx = bootstrap_indices(50, 30, seed=3)
    values = auc_rows(y[idx], s[idx])
    for row, v in zip(idx, values, strict=True):
        if 0 < y[row].sum() < len(row):
            assert v == pytest.approx(roc_auc_score(y[row], s[row]))
        else:
            assert np.isnan(v)


def test_resampled_auc_equals_ranking_each_resample():
    rng = np.random.default_rng(5)
    y = rng.random(40) < 0.3
    s = np.round(rng.random(40) + 0.3 * y, 1)  # ties within and across resamples
    idx = bootstrap_indices(40, 500, seed=1)
    idx[0] = 0 if y[0] else np.flatnonzero(~y)[0]  # one resample of a single class
    expected, got = auc_rows(y[idx], s[idx]), resampled_auc(y[idx], s, idx)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert np.isnan(got[0]) and not np.isnan(got[1:]).any()


def test_bootstrap_is_seeded_and_vectorised_equals_loop():
    rng = np.random.default_rng(4)
    y = rng.random(80) < 0.3
    s = rng.random(80) + 0.5 * y
    fast = bootstrap_ci(y, s, auc_rows, n_boot=300, seed=7)
    slow = bootstrap_ci(y, s, roc_auc_score, n_boot=300, seed=7)
    assert fast == pytest.approx(slow)
    assert bootstrap_ci(y, s, auc_rows, n_boot=300, seed=7) == fast
    assert bootstrap_ci(y, s, auc_rows, n_boot=300, seed=8) != fast
    lo, hi = fast
    assert lo < roc_auc_score(y, s) < hi
    by_counts = bootstrap_ci(y, s, resampled_auc, n_boot=300, seed=7)
    assert by_counts == pytest.approx(fast, abs=1e-12)
    ss = bootstrap_ci(y, s, ss_avg_rows(0.75), n_boot=300, seed=7)
    assert ss.lo < ss.hi and ss.n_skipped == 0


def test_bootstrap_skips_and_counts_one_class_resamples():
    y = np.array([1, 0, 0, 0, 0], bool)
    s = np.array([0.9, 0.1, 0.2, 0.3, 0.4])
    n_boot = 500
    ci = bootstrap_ci(y, s, auc_rows, n_boot=n_boot, seed=0)
    idx = bootstrap_indices(5, n_boot, seed=0)
    one_class = int((~(idx == 0).any(axis=1)).sum())  # resamples without the positive patient
    assert one_class > 0
    assert ci.n_skipped == one_class and ci.n_boot == n_boot
    assert ci == (1.0, 1.0)  # every defined resample separates perfectly
    # a plain callable that raises is skipped the same way
    assert bootstrap_ci(y, s, roc_auc_score, n_boot=n_boot, seed=0).n_skipped == one_class
    assert all(np.isnan(bootstrap_ci(np.ones(4, bool), s[:4], auc_rows, n_boot=50)))


def test_bootstrap_auc_covers_true_auc_near_nominal():
    rng = np.random.default_rng(5)
    d, n_pos, n_neg = 1.2, 40, 60
    true_auc = norm.cdf(d / np.sqrt(2))  # binormal, unit variances
    y = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    hits = 0
    studies = 150
    for study in range(studies):
        s = rng.standard_normal(n_pos + n_neg) + d * y
        lo, hi = bootstrap_ci(y, s, auc_rows, n_boot=300, seed=study)
        hits += lo <= true_auc <= hi
    assert 0.85 <= hits / studies <= 0.99


def test_mcnemar_agrees_with_statsmodels():
    rng = np.random.default_rng(6)
    for n, flip in [(30, 0.2), (40, 0.1), (300, 0.3), (500, 0.2)]:
        a = rng.random(n) < 0.8
        b = np.where(rng.random(n) < flip, ~a, a)
        out = mcnemar_test(a, b)
        b_, c_ = int((a & ~b).sum()), int((~a & b).sum())
        assert (out["b"], out["c"], out["n"]) == (b_, c_, n)
        assert out["exact"] == (b_ + c_ < 25)
        table = [[int((a & b).sum()), b_], [c_, int((~a & ~b).sum())]]
        ref = mcnemar(table, exact=out["exact"], correction=True)
        assert out["p_value"] == pytest.approx(ref.pvalue)
        assert out["statistic"] == pytest.approx(ref.statistic)
    same = mcnemar_test([True, False, True], [True, False, True])
    assert same["p_value"] == 1.0 and same["b"] == same["c"] == 0
    with pytest.raises(ValueError, match="equal length"):
        mcnemar_test([True], [True, False])
