import numpy as np
import pytest

from gynmri.evaluation.decision import (
    CURVE_COLUMNS,
    decision_curve,
    default_thresholds,
    net_benefit,
    net_benefit_at,
)

# 10 patients, 4 positives (sorted by probability within each class for reading)
Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P = np.array([0.9, 0.6, 0.3, 0.1, 0.7, 0.4, 0.25, 0.15, 0.05, 0.2])


def test_net_benefit_by_hand():
    # t = 0.2: treated p >= 0.2 -> positives 0.9, 0.6, 0.3 (TP = 3);
    # negatives 0.7, 0.4, 0.25, 0.2 (FP = 4, 0.2 counts: p >= t)
    # NB = 3/10 - 4/10 * 0.2/0.8 = 0.3 - 0.1 = 0.2
    assert net_benefit(Y, P, 0.2) == pytest.approx(0.2)
    # t = 0.5: treated -> positives 0.9, 0.6 (TP = 2); negative 0.7 (FP = 1)
    # NB = 2/10 - 1/10 * 0.5/0.5 = 0.1
    assert net_benefit(Y, P, 0.5) == pytest.approx(0.1)
    # t = 0.95: nobody treated -> NB = 0
    assert net_benefit(Y, P, 0.95) == 0.0


def test_curve_rows_match_hand_counts():
    curve = decision_curve(Y, P, [0.2, 0.5])
    assert list(curve.columns) == CURVE_COLUMNS
    assert curve["true_positives"].tolist() == [3, 2]
    assert curve["false_positives"].tolist() == [4, 1]
    assert curve["n"].tolist() == [10, 10]
    np.testing.assert_allclose(curve["net_benefit"], [0.2, 0.1])
    # treat all, prevalence 0.4: t = 0.2 -> 0.4 - 0.6 * 0.25 = 0.25; t = 0.5 -> 0.4 - 0.6 = -0.2
    np.testing.assert_allclose(curve["treat_all"], [0.25, -0.2])
    assert (curve["treat_none"] == 0).all()


def test_default_curve_and_treat_all_formula():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(int)
    p = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.2, 200), 0, 1)
    curve = decision_curve(y, p)
    assert len(curve) == 99
    assert curve["threshold"].iloc[0] == 0.01 and curve["threshold"].iloc[-1] == 0.99
    assert 0.07 in curve["threshold"].tolist() and 0.29 in curve["threshold"].tolist()
    t = curve["threshold"].to_numpy()
    prev = y.mean()
    np.testing.assert_allclose(curve["treat_all"], prev - (1 - prev) * t / (1 - t))
    # a model giving everyone p = 1 treats everyone at every threshold: NB = treat all
    everyone = decision_curve(y, np.ones(200))
    np.testing.assert_allclose(everyone["net_benefit"], everyone["treat_all"])
    # each row agrees with the scalar function
    for row in curve.iloc[::17].itertuples():
        assert row.net_benefit == pytest.approx(net_benefit(y, p, row.threshold))


def test_perfect_classifier_net_benefit_is_prevalence():
    y = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0])
    curve = decision_curve(y, y.astype(float))
    np.testing.assert_allclose(curve["net_benefit"], 0.3)
    assert (curve["false_positives"] == 0).all() and (curve["true_positives"] == 3).all()
    # and it is never beaten by treating all
    assert (curve["net_benefit"] >= curve["treat_all"]).all()


def test_thresholds_strictly_inside_unit_interval():
    for bad in (0.0, 1.0, -0.1, 1.5, np.nan):
        with pytest.raises(ValueError, match=r"strictly inside \(0, 1\)"):
            net_benefit(Y, P, bad)
    with pytest.raises(ValueError, match="strictly inside"):
        decision_curve(Y, P, [0.1, 1.0])
    with pytest.raises(ValueError, match="one threshold"):
        net_benefit(Y, P, [0.1, 0.2])
    with pytest.raises(ValueError, match="0/1"):
        decision_curve([0, 2], [0.1, 0.2])


def test_net_benefit_at_picks_nearest_grid_rows():
    curve = decision_curve(Y, P)
    rows = net_benefit_at(curve, [0.5, 0.2, 0.1234])
    assert rows["threshold"].tolist() == [0.5, 0.2, 0.12]
    np.testing.assert_allclose(rows["net_benefit"][:2], [0.1, 0.2])
    assert rows.index.tolist() == [0, 1, 2]
    assert net_benefit_at(curve, 0.3)["threshold"].tolist() == [0.3]


def test_default_thresholds_are_clean():
    t = default_thresholds()
    assert t.tolist() == [round(k / 100, 2) for k in range(1, 100)]
