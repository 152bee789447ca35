import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from gynmri.evaluation.readers import (
    majority_calls,
    model_calls,
    read_readers,
    reader_table,
    reader_tests,
    validate_readers,
)
from gynmri.report.figures import plot_reader_bars
from gynmri.synth.readers import simulate_readers

CLASSES = ["myoma", "sarcoma"]
POS = ["sarcoma"]


def _model():
    # A, B sarcoma; C, D myoma. At 0.5 the model calls A+, B-, C-, D+ (one of each error).
    return pd.DataFrame(
        {
            "patient": ["A", "B", "C", "D"],
            "label": ["sarcoma", "sarcoma", "myoma", "myoma"],
            "fold": [0, 1, 0, 1],
            "p_sarcoma": [0.9, 0.3, 0.2, 0.6],
            "p_myoma": [0.1, 0.7, 0.8, 0.4],
        }
    )


def _readers():
    calls = {
        ("S1", "specialist", "unaided"): ["sarcoma", "sarcoma", "myoma", "myoma"],  # all right
        ("S2", "specialist", "unaided"): ["sarcoma", "myoma", "myoma", "sarcoma"],  # B, D wrong
        ("R1", "resident", "unaided"): ["myoma", "myoma", "myoma", "myoma"],  # A, B wrong
        ("R1", "resident", "assisted"): ["sarcoma", "sarcoma", "myoma", "sarcoma"],  # D wrong
    }
    rows = [
        (reader, role, session, patient, call)
        for (reader, role, session), cs in calls.items()
        for patient, call in zip("ABCD", cs, strict=True)
    ]
    return pd.DataFrame(rows, columns=["reader", "role", "session", "patient", "call"])


def test_validation_names_the_row():
    good = _readers()
    bad = good.copy()
    bad.loc[1, "session"] = "later"
    with pytest.raises(ValueError, match=r"row 2 .*reader 'S1'.*unknown session 'later'"):
        validate_readers(bad, CLASSES, list("ABCD"))
    bad = good.copy()
    bad.loc[5, "call"] = "fibroid"
    with pytest.raises(ValueError, match=r"row 6 .*patient 'B'.*unknown call 'fibroid'"):
        validate_readers(bad, CLASSES, list("ABCD"))
    bad = good.copy()
    bad.loc[3, "patient"] = "Jane Doe"
    with pytest.raises(ValueError, match=r"row 4 .*patient 'Jane Doe' has no model score"):
        validate_readers(bad, CLASSES, list("ABCD"))
    bad = good.copy()
    bad.loc[2, "call"] = ""
    with pytest.raises(ValueError, match=r"row 3 .*empty call"):
        validate_readers(bad, CLASSES)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['call'\]"):
        validate_readers(good.drop(columns="call"), CLASSES)
    with pytest.raises(ValueError, match=r"row 17 .*already read this patient"):
        validate_readers(pd.concat([good, good.iloc[[0]]], ignore_index=True), CLASSES)
    bad = good.copy()
    bad.loc[0, "role"] = "resident"
    with pytest.raises(ValueError, match="reader 'S1' has several roles"):
        validate_readers(bad, CLASSES)
    clean = validate_readers(good.assign(call=" " + good["call"]), CLASSES, list("ABCD"))
    assert clean["call"].isin(CLASSES).all()


def test_read_readers_from_tsv(tmp_path):
    path = tmp_path / "readers.tsv"
    _readers().to_csv(path, sep="\t", index=False)
    table = read_readers(path, CLASSES, list("ABCD"))
    pd.testing.assert_frame_equal(table, _readers())


def test_reader_table_by_hand():
    table = reader_table(_readers(), _model(), CLASSES, POS, 0.5)
    rows = table.set_index(["level", "role", "reader", "session"])
    spec_un = rows.loc[("role", "specialist", "", "unaided")]
    # S1 4/4 right, S2 2/4: pooled tp 3, fn 1, tn 3, fp 1
    assert (spec_un["n"], spec_un["tp"], spec_un["fn"], spec_un["tn"], spec_un["fp"]) == (
        8,
        3,
        1,
        3,
        1,
    )
    assert (spec_un["accuracy"], spec_un["sensitivity"], spec_un["specificity"]) == (
        0.75,
        0.75,
        0.75,
    )
    assert (
        spec_un["ss_avg"] == pytest.approx(0.75)
        and spec_un["n_readers"] == 2
        and spec_un["n_patients"] == 4
    )
    assert (spec_un["accuracy_lo"], spec_un["accuracy_hi"]) == pytest.approx(
        proportion_confint(6, 8, method="wilson")
    )
    assert (spec_un["sensitivity_lo"], spec_un["sensitivity_hi"]) == pytest.approx(
        proportion_confint(3, 4, method="wilson")
    )
    res_un = rows.loc[("role", "resident", "", "unaided")]
    assert (res_un["accuracy"], res_un["sensitivity"], res_un["specificity"]) == (0.5, 0.0, 1.0)
    assert res_un["ss_avg"] == pytest.approx(0.5)
    res_as = rows.loc[("role", "resident", "", "assisted")]
    assert (res_as["accuracy"], res_as["sensitivity"], res_as["specificity"]) == (0.75, 1.0, 0.5)
    model = rows.loc[("model", "model", "model", "-")]
    assert (model["n"], model["accuracy"], model["sensitivity"], model["specificity"]) == (
        4,
        0.5,
        0.5,
        0.5,
    )
    s2 = rows.loc[("reader", "specialist", "S2", "unaided")]
    assert (s2["accuracy"], s2["tp"], s2["fp"]) == (0.5, 1, 1)
    assert ("role", "specialist", "", "assisted") not in rows.index  # no such session read
    assert list(table["level"]) == ["role"] * 3 + ["model"] + ["reader"] * 4


def test_majority_vote_tie_is_positive_and_mcnemar_by_hand():
    table = _readers().assign(reader_positive=lambda t: t["call"].eq("sarcoma"))
    votes = majority_calls(table)
    spec = votes[(votes["role"] == "specialist") & (votes["session"] == "unaided")]
    # S1+/S2- on B and S1-/S2+ on D are ties -> positive calls
    assert list(spec["patient"]) == list("ABCD")
    assert list(spec["role_positive"]) == [True, True, False, True]
    assert list(spec["positive_votes"]) == [2, 1, 0, 1]

    tests = reader_tests(_readers(), _model(), CLASSES, POS, 0.5)
    t = tests.set_index(["comparison", "role", "session", "metric"])
    acc = t.loc[("model vs role", "specialist", "unaided", "accuracy")]
    # model right on A, C; specialists' vote right on A, B, C -> b = 0, c = 1 (patient B)
    assert (acc["n"], acc["b"], acc["c"], acc["exact"]) == (4, 0, 1, True)
    assert acc["p_value"] == pytest.approx(1.0)
    assert (acc["first_rate"], acc["second_rate"]) == (0.5, 0.75)
    sens = t.loc[("model vs role", "specialist", "unaided", "sensitivity")]
    assert (sens["n"], sens["b"], sens["c"]) == (2, 0, 1)
    spec = t.loc[("model vs role", "specialist", "unaided", "specificity")]
    assert (spec["n"], spec["b"], spec["c"], spec["p_value"]) == (2, 0, 0, 1.0)
    # resident assisted right on A, B, C; unaided on C, D -> b = 2 (A, B), c = 1 (D)
    ru = t.loc[("assisted vs unaided", "resident", "assisted vs unaided", "accuracy")]
    assert (ru["first"], ru["second"], ru["b"], ru["c"]) == (
        "resident assisted",
        "resident unaided",
        2,
        1,
    )
    assert ru["p_value"] == pytest.approx(1.0)  # exact binomial, 3 discordant pairs
    assert ("assisted vs unaided", "specialist", "assisted vs unaided", "accuracy") not in t.index


def test_model_threshold_per_fold():
    thr = pd.Series({0: 0.95, 1: 0.25})  # fold 0 strict, fold 1 lenient
    calls = model_calls(_model(), POS, thr).set_index("patient")
    assert list(calls["model_positive"]) == [False, True, False, True]
    with pytest.raises(ValueError, match="lacks some folds"):
        model_calls(_model(), POS, pd.Series({0: 0.5}))


def test_simulated_readers_are_deterministic_and_near_the_study():
    n_pos, n_neg = 1500, 1500
    patients = pd.DataFrame(
        {
            "patient": [f"P{i:010x}" for i in range(n_pos + n_neg)],
            "label": ["sarcoma"] * n_pos + ["myoma"] * n_neg,
        }
    )
    sim = simulate_readers(patients, POS, CLASSES, seed=4)
    pd.testing.assert_frame_equal(sim, simulate_readers(patients, POS, CLASSES, seed=4))
    assert not sim.equals(simulate_readers(patients, POS, CLASSES, seed=5))
    assert len(sim) == 6 * 2 * len(patients)
    assert sorted(sim["reader"].unique()) == ["R1", "R2", "R3", "S1", "S2", "S3"]
    scores = patients.assign(p_sarcoma=np.where(patients["label"] == "sarcoma", 0.9, 0.1))
    scores["p_myoma"] = 1 - scores["p_sarcoma"]
    rows = reader_table(sim, scores, CLASSES, POS, 0.5).set_index(["level", "role", "session"])
    expect = {
        ("specialist", "unaided"): (0.71, 0.94),
        ("resident", "unaided"): (0.48, 0.92),
        ("resident", "assisted"): (0.88, 0.94),
    }
    for (role, session), (sens, spec) in expect.items():
        row = rows.loc[("role", role, session)]
        assert row["sensitivity"] == pytest.approx(sens, abs=0.06)
        assert row["specificity"] == pytest.approx(spec, abs=0.04)
    un, assisted = (
        rows.loc[("role", "specialist", "unaided")],
        rows.loc[("role", "specialist", "assisted")],
    )
    assert assisted["ss_avg"] > un["ss_avg"]


def test_three_classes_wrong_calls_cross_the_binary_line():
    classes = ["benign", "borderline", "malignant"]
    patients = pd.DataFrame({"patient": [f"K{i}" for i in range(300)], "label": classes * 100})
    sim = simulate_readers(patients, ["borderline", "malignant"], classes, seed=1)
    merged = sim.merge(patients, on="patient")
    wrong = merged[merged["call"] != merged["label"]]
    assert len(wrong)
    truth_pos = wrong["label"].isin(["borderline", "malignant"])
    call_pos = wrong["call"].isin(["borderline", "malignant"])
    assert (truth_pos != call_pos).all()


def test_plot_reader_bars_writes_png(tmp_path):
    patients = pd.DataFrame(
        {"patient": [f"P{i}" for i in range(40)], "label": ["sarcoma", "myoma"] * 20}
    )
    scores = patients.assign(p_sarcoma=np.linspace(0, 1, 40))
    scores["p_myoma"] = 1 - scores["p_sarcoma"]
    sim = simulate_readers(patients, POS, CLASSES, seed=0)
    out = tmp_path / "readers.png"
    plot_reader_bars(reader_table(sim, scores, CLASSES, POS, 0.5), out)
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"
