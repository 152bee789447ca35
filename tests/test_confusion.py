"""One core for confusion counts and rates: every metric of the pipeline agrees with it, and all
follow one documented rule for empty classes (see gynmri.evaluation.confusion)."""

import numpy as np
import pandas as pd
import pytest

from gynmri.evaluation.classes import multiclass_metrics
from gynmri.evaluation.confusion import counts, jaccard, macro_recall, rates
from gynmri.evaluation.metrics import binary_metrics, metrics_with_ci, ss_avg_rows
from gynmri.evaluation.readers import reader_table
from gynmri.evaluation.selection import slice_metrics

RNG = np.random.default_rng(12)


def test_counts_and_rates_of_one_set_and_of_many_resamples_agree():
    truth = RNG.random(40) < 0.3
    called = RNG.random(40) < 0.4
    c = counts(truth, called)
    assert c == {
        "tp": int((truth & called).sum()),
        "fp": int((~truth & called).sum()),
        "tn": int((~truth & ~called).sum()),
        "fn": int((truth & ~called).sum()),
    }
    r = rates(c)
    assert r["sensitivity"] == pytest.approx(c["tp"] / truth.sum())
    assert r["ss_avg"] == pytest.approx((r["sensitivity"] + r["specificity"]) / 2)
    assert jaccard(c) == pytest.approx(c["tp"] / (c["tp"] + c["fp"] + c["fn"]))
    rows = rates(counts(np.stack([truth, truth[::-1]]), np.stack([called, called[::-1]])))
    assert rows["ss_avg"][0] == pytest.approx(r["ss_avg"])  # row-wise = one set at a time


def test_every_metric_agrees_with_the_core():
    truth = RNG.random(60) < 0.35
    score = np.clip(0.3 * truth + RNG.random(60) * 0.7, 0, 1)
    called = score >= 0.5
    core = rates(counts(truth, called))
    binary = binary_metrics(truth, score, 0.5)
    scores = pd.DataFrame({"label": np.where(truth, "b", "a"), "p_a": 1 - score, "p_b": score})
    _, per_class, _ = multiclass_metrics(scores, ["a", "b"])
    readers = pd.DataFrame(
        {
            "reader": "r1",
            "role": "x",
            "session": "unaided",
            "patient": [f"P{i}" for i in range(60)],
            "call": np.where(called, "b", "a"),
        }
    )
    model = scores.assign(patient=readers["patient"])
    reader_row = reader_table(readers, model, ["a", "b"], ["b"], 0.5).iloc[0]
    slices = slice_metrics(truth, called)
    for metric in ("sensitivity", "specificity"):
        assert binary[metric] == pytest.approx(core[metric])
        assert per_class.set_index("class").loc["b", metric] == pytest.approx(core[metric])
        assert reader_row[metric] == pytest.approx(core[metric])
        assert slices[metric] == pytest.approx(core[metric])
    assert binary["ss_avg"] == pytest.approx(core["ss_avg"]) == reader_row["ss_avg"]
    boot = ss_avg_rows(0.5)(truth[None, :], score[None, :])
    assert boot[0] == pytest.approx(core["ss_avg"])


def test_empty_class_rule_is_the_same_everywhere():
    """No positive patient (a fold without sarcoma): sensitivity and SS-Avg are undefined (NaN)
    in every implementation; SS-Avg is not the specificity."""
    truth = np.zeros(8, bool)
    score = np.linspace(0.1, 0.9, 8)
    called = score >= 0.5
    binary = binary_metrics(truth, score, 0.5)
    assert np.isnan(binary["sensitivity"]) and binary["specificity"] == pytest.approx(0.5)
    assert np.isnan(binary["ss_avg"]) and np.isnan(binary["auc"])
    with_ci = metrics_with_ci(truth, score, 0.5, n_boot=20)
    assert np.isnan(with_ci["ss_avg"]) and np.isnan(with_ci["sensitivity_lo"])
    assert with_ci["ppv"] == pytest.approx(0.0)  # 4 positive calls, none right
    assert np.isnan(ss_avg_rows(0.5)(truth[None, :], score[None, :])[0])
    assert np.isnan(slice_metrics(truth, called)["sensitivity"])
    assert np.isnan(slice_metrics(truth, np.zeros(8, bool))["jaccard"])  # no truth, no selection
    scores = pd.DataFrame({"label": "a", "p_a": 1 - score, "p_b": score})
    summary, per_class, _ = multiclass_metrics(scores, ["a", "b"])
    assert np.isnan(per_class.set_index("class").loc["b", "ss_avg"])
    assert np.isnan(summary["macro_ss_avg"])
    assert macro_recall(np.zeros(4), np.array([0, 0, 1, 1])) == pytest.approx(0.5)
