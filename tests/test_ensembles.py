"""Every ensemble at once (gynmri.evaluation.ensembles) against one ensemble at a time (pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gynmri.evaluation.classes import multiclass_metrics
from gynmri.evaluation.ensembles import youden_thresholds
from gynmri.evaluation.metrics import (
    BOOTSTRAP_COLUMNS,
    MACRO_BOOTSTRAP_COLUMNS,
    ensemble_metrics,
    row_metrics,
    shown_ensembles,
)
from gynmri.evaluation.scoring import (
    combinations_of,
    combine_sequences,
    ensemble_name,
    positive_score,
    prob_columns,
)
from gynmri.evaluation.thresholds import per_fold_thresholds, thresholds_for

SEQUENCES = ["T2axi", "T2sag", "DWI", "ADC", "CE"]


def _scores(classes: list[str], n: int = 45, seed: int = 0, missing: float = 0.2) -> pd.DataFrame:
    """Patient scores of ``n`` patients in 3 folds over 5 sequences, some sequences missing,
    probabilities loosely tied to the label, a few exact ties."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(classes, n)
    rows = []
    for i in range(n):
        for s, sequence in enumerate(SEQUENCES):
            if s > 0 and rng.random() < missing:  # every patient keeps T2axi
                continue
            logits = rng.normal(size=len(classes))
            logits[classes.index(labels[i])] += 1.0
            p = np.exp(logits) / np.exp(logits).sum()
            if rng.random() < 0.1:
                p = np.round(p, 1) / np.round(p, 1).sum()  # ties
            rows.append(
                {"patient": f"p{i:03d}", "sequence": sequence, "fold": i % 3,
                 "label": labels[i], **dict(zip(prob_columns(classes), p, strict=True))}
            )  # fmt: skip
    return pd.DataFrame(rows)


def _reference(scores, classes, positive, n_boot, threshold_rule) -> pd.DataFrame:
    """The ensembles table as the one-ensemble-at-a-time path makes it (before ranking)."""
    rows = []
    for members in combinations_of(SEQUENCES):
        combined = combine_sequences(scores, members, classes, "mean")
        truth = combined["label"].isin(positive).to_numpy()
        thr, _ = thresholds_for(combined, positive, 0.5, threshold_rule)
        metrics = row_metrics(truth, positive_score(combined, positive), thr, n_boot, 0, True)
        rows.append(
            {
                "ensemble": ensemble_name(members),
                "n_sequences": len(members),
                "patients_missing_a_sequence": int((combined["n_members"] < len(members)).sum()),
                "patients_without_any": scores["patient"].nunique() - len(combined),
                **metrics,
                **multiclass_metrics(combined, classes, n_boot=n_boot, seed=0)[0],
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "classes,positive,threshold_rule",
    [
        (["myoma", "sarcoma"], ["sarcoma"], None),
        (["myoma", "sarcoma"], ["sarcoma"], "youden"),
        (["benign", "borderline", "malignant"], ["malignant"], None),
        (["benign", "borderline", "malignant"], ["borderline", "malignant"], "youden"),
    ],
)
def test_every_ensemble_at_once_equals_one_at_a_time(classes, positive, threshold_rule):
    scores = _scores(classes, missing=0.3)
    table = ensemble_metrics(
        scores, SEQUENCES, classes, positive, 0.5, "mean", n_boot=0, threshold_rule=threshold_rule
    )
    expected = _reference(scores, classes, positive, 0, threshold_rule)
    got = table.set_index("ensemble").loc[expected["ensemble"]].reset_index()
    assert list(got.columns) == list(expected.columns)
    assert (got["patients_without_any"] > 0).any()  # the missing-sequence paths are exercised
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)


def test_bootstrap_columns_equal_and_only_for_the_shown_ensembles():
    classes, positive = ["benign", "borderline", "malignant"], ["malignant"]
    scores = _scores(classes, n=30, seed=1)
    table = ensemble_metrics(
        scores, SEQUENCES, classes, positive, 0.5, "mean", n_boot=50, rank_by="macro_auc", top=4
    )
    expected = _reference(scores, classes, positive, 50, None).set_index("ensemble")
    assert list(table.columns) == ["ensemble", *expected.columns]
    shown = shown_ensembles(table, 4)
    # the top 4, every single sequence, the best of sizes 2-5 (some already in the top 4)
    assert set(table["ensemble"][:4]) | set(SEQUENCES) <= set(shown) and len(shown) < len(table)
    for size in range(1, 6):
        assert table.loc[table["n_sequences"] == size, "ensemble"].iloc[0] in shown
    for _, row in table.iterrows():
        ref = expected.loc[row["ensemble"]]
        if row["ensemble"] in shown:
            assert row["n_boot"] == 50
            pd.testing.assert_series_equal(
                row.drop("ensemble"), ref, check_names=False, check_dtype=False, rtol=1e-12
            )
        else:
            assert (
                row["n_boot"] == 0 and np.isnan(row[["auc_lo", "macro_auc_hi"]].astype(float)).all()
            )
            point = [c for c in ref.index if c not in BOOTSTRAP_COLUMNS + MACRO_BOOTSTRAP_COLUMNS]
            np.testing.assert_allclose(row[point].astype(float), ref[point].astype(float))


def test_youden_thresholds_equal_choose_threshold_per_fold():
    scores = _scores(["myoma", "sarcoma"], n=60, seed=2, missing=0.0)
    one = scores[scores["sequence"] == "DWI"].sort_values("patient")
    expected = one["fold"].map(per_fold_thresholds(one, ["sarcoma"], "youden")).to_numpy()
    truth = (one["label"] == "sarcoma").to_numpy()
    s = positive_score(one, ["sarcoma"])[None, :]
    got = youden_thresholds(truth, s, np.ones_like(s, bool), one["fold"].to_numpy())
    np.testing.assert_array_equal(got[0], expected)


def test_unknown_combine_rule_and_label_raise():
    scores = _scores(["myoma", "sarcoma"], n=12)
    with pytest.raises(ValueError, match="unknown combine rule"):
        ensemble_metrics(scores, SEQUENCES, ["myoma", "sarcoma"], ["sarcoma"], 0.5, "median")
    scores.loc[scores["patient"] == "p000", "label"] = "adenomyosis"
    with pytest.raises(ValueError, match="adenomyosis"):
        ensemble_metrics(scores, SEQUENCES, ["myoma", "sarcoma"], ["sarcoma"], 0.5, "mean")
