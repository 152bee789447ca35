import hashlib
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2
from statsmodels.stats.proportion import proportion_confint

from gynmri.evaluation.reader_comparisons import (
    MULTICLASS_TEST_COLUMNS,
    majority_calls,
    reader_tests,
)
from gynmri.evaluation.readers import (
    model_calls,
    read_readers,
    reader_table,
    validate_readers,
)
from gynmri.evaluation.square_tests import bowker_test, call_table, stuart_maxwell_test
from gynmri.report.figures import plot_reader_bars
from gynmri.synth.readers import confusion_weights, simulate_readers

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


def test_binary_tables_keep_their_columns():
    table = reader_table(_readers(), _model(), CLASSES, POS, 0.5)
    assert "top1_accuracy" not in table and "sensitivity_sarcoma" not in table
    assert len(table.columns) == 21  # level ... ss_avg, as before the multiclass study
    tests = reader_tests(_readers(), _model(), CLASSES, POS, 0.5)
    assert list(tests.columns) == [
        "comparison",
        "role",
        "session",
        "metric",
        "first",
        "second",
        "first_rate",
        "second_rate",
        "n",
        "b",
        "c",
        "statistic",
        "p_value",
        "exact",
    ]


def test_binary_simulation_is_unchanged():
    """The uterine demo's simulated readers: the same bytes as before K classes were added."""
    patients = pd.DataFrame(
        {"patient": [f"P{i:010x}" for i in range(20)], "label": ["sarcoma", "myoma"] * 10}
    )
    text = simulate_readers(patients, POS, CLASSES, seed=3).to_csv(sep="\t", index=False)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest == "3ed658c431bce239584298c8536b516e8c33ea14cfa89f4d3a84340fc97fae5c"


# --- several classes --------------------------------------------------------------------------

K3 = ["benign", "borderline", "malignant"]
MAL = ["malignant"]


def _model3():
    # argmax calls: A benign, B borderline, C borderline, D malignant, E malignant, F benign,
    # G malignant. E's p_malignant is under 0.5: a threshold would call it negative.
    p = {
        "A": (0.7, 0.2, 0.1),
        "B": (0.3, 0.5, 0.2),
        "C": (0.2, 0.6, 0.2),
        "D": (0.1, 0.3, 0.6),
        "E": (0.3, 0.25, 0.45),
        "F": (0.5, 0.2, 0.3),
        "G": (0.1, 0.1, 0.8),
    }
    probs = np.array(list(p.values()))
    return pd.DataFrame(
        {
            "patient": list(p),
            "label": ["benign"] * 2 + ["borderline"] * 2 + ["malignant"] * 3,
            "fold": [0, 1, 0, 1, 0, 1, 0],
            **{f"p_{c}": probs[:, i] for i, c in enumerate(K3)},
        }
    )


def _readers3():
    b, d, m = "benign", "borderline", "malignant"
    calls = {  # patients A B C D E F G (truth b b d d m m m)
        ("S1", "specialist", "unaided"): [b, b, m, d, m, m, m],
        ("S2", "specialist", "unaided"): [b, d, d, d, d, m, m],
        ("S3", "specialist", "unaided"): [b, b, d, m, d, b, m],
        ("R1", "resident", "unaided"): [b, d, d, b, m, d, b],
        ("R2", "resident", "unaided"): [d, d, m, d, m, b, m],
        ("R1", "resident", "assisted"): [b, b, d, d, m, m, m],
        ("R2", "resident", "assisted"): [b, d, d, d, m, m, m],
        ("R3", "resident", "assisted"): [d, m, b, d, m, d, m],
    }
    rows = [
        (reader, role, session, patient, call)
        for (reader, role, session), cs in calls.items()
        for patient, call in zip("ABCDEFG", cs, strict=True)
    ]
    return pd.DataFrame(rows, columns=["reader", "role", "session", "patient", "call"])


def test_model_calls_its_most_probable_class():
    calls = model_calls(_model3(), MAL, 0.5, K3).set_index("patient")
    assert list(calls["model_call"]) == [
        "benign",
        "borderline",
        "borderline",
        "malignant",
        "malignant",
        "benign",
        "malignant",
    ]
    assert list(calls["model_positive"]) == [False, False, False, True, True, False, True]
    # the threshold is not used with several classes (not even checked against the folds)
    strict = model_calls(_model3(), MAL, pd.Series({0: 0.99}), K3).set_index("patient")
    assert list(strict["model_call"]) == list(calls["model_call"])


def test_reader_table_per_class_and_macro_by_hand():
    table = reader_table(_readers3(), _model3(), K3, MAL, 0.5)
    rows = table.set_index(["level", "role", "reader", "session"])
    spec = rows.loc[("role", "specialist", "", "unaided")]
    # 21 calls: benign patients called benign 5/6, borderline 4/6, malignant 6/9
    assert spec["n"] == 21
    assert spec["sensitivity_benign"] == pytest.approx(5 / 6)
    assert spec["sensitivity_borderline"] == pytest.approx(4 / 6)
    assert spec["sensitivity_malignant"] == pytest.approx(6 / 9)
    # others not called k: benign 14/15 (S3 on F), borderline 12/15 (S2 on B and E, S3 on E),
    # malignant 10/12 (S1 on C, S3 on D)
    assert spec["specificity_benign"] == pytest.approx(14 / 15)
    assert spec["specificity_borderline"] == pytest.approx(12 / 15)
    assert spec["specificity_malignant"] == pytest.approx(10 / 12)
    assert spec["top1_accuracy"] == pytest.approx(15 / 21)
    assert (spec["top1_accuracy_lo"], spec["top1_accuracy_hi"]) == pytest.approx(
        proportion_confint(15, 21, method="wilson")
    )
    assert (spec["sensitivity_borderline_lo"], spec["sensitivity_borderline_hi"]) == (
        pytest.approx(proportion_confint(4, 6, method="wilson"))
    )
    recall = np.array([5 / 6, 4 / 6, 6 / 9])
    specificity = np.array([14 / 15, 12 / 15, 10 / 12])
    # macro sensitivity is the balanced accuracy, not the top-1 accuracy (classes unbalanced)
    assert spec["macro_sensitivity"] == pytest.approx(recall.mean())
    assert spec["macro_sensitivity"] != pytest.approx(spec["top1_accuracy"])
    assert spec["macro_specificity"] == pytest.approx(specificity.mean())
    assert spec["macro_ss_avg"] == pytest.approx(((recall + specificity) / 2).mean())
    # the positive view (malignant vs rest) keeps the binary columns
    assert (spec["tp"], spec["fn"], spec["fp"], spec["tn"]) == (6, 3, 2, 10)
    model = rows.loc[("model", "model", "model", "-")]
    assert model["top1_accuracy"] == pytest.approx(4 / 7)
    assert (model["sensitivity_benign"], model["sensitivity_malignant"]) == pytest.approx(
        (1 / 2, 2 / 3)
    )
    # argmax, not the 0.5 threshold: E counts as a malignant call (the threshold would miss it)
    assert (model["tp"], model["fn"], model["fp"], model["tn"]) == (2, 1, 1, 3)
    r3 = rows.loc[("reader", "resident", "R3", "assisted")]
    assert r3["top1_accuracy"] == pytest.approx(3 / 7)  # D, E, G
    # a class without patients: its sensitivity and the macro means are undefined
    few = reader_table(
        _readers3()[_readers3()["patient"].isin(list("ABCD"))], _model3(), K3, MAL, 0.5
    )
    m = few.set_index("level").loc["model"]
    assert np.isnan(m["sensitivity_malignant"]) and np.isnan(m["macro_sensitivity"])
    assert m["sensitivity_benign"] == pytest.approx(0.5)


def test_majority_vote_ties_go_to_the_more_severe_class():
    table = _readers3().assign(reader_positive=lambda t: t["call"].eq("malignant"))
    votes = majority_calls(table, K3, MAL).set_index(["role", "session", "patient"]).sort_index()
    res_un = votes.loc[("resident", "unaided")]
    # two readers: benign/borderline -> borderline, borderline/malignant -> malignant,
    # benign/malignant -> malignant
    assert list(res_un["role_call"]) == [
        "borderline",
        "borderline",
        "malignant",
        "borderline",
        "malignant",
        "borderline",
        "malignant",
    ]
    res_as = votes.loc[("resident", "assisted")]
    # B: benign, borderline, malignant (a three-way tie) -> malignant, a positive call although
    # only one of three readers called it positive
    b = res_as.loc["B"]
    assert (b["role_call"], b["role_positive"], b["positive_votes"], b["n_readers"]) == (
        "malignant",
        True,
        1,
        3,
    )
    assert (b["votes_benign"], b["votes_borderline"], b["votes_malignant"]) == (1, 1, 1)
    assert res_as.loc["A", "role_call"] == "benign"  # 2 of 3, no tie
    spec = votes.loc[("specialist", "unaided")]
    assert list(spec["role_call"]) == [
        "benign",
        "benign",
        "borderline",
        "borderline",
        "borderline",
        "malignant",
        "malignant",
    ]
    with pytest.raises(ValueError, match="positive classes"):
        majority_calls(table, K3)


def _bowker_by_hand(t):
    t = np.asarray(t, float)
    return sum(
        (t[i, j] - t[j, i]) ** 2 / (t[i, j] + t[j, i])
        for i in range(len(t))
        for j in range(i + 1, len(t))
        if t[i, j] + t[j, i] > 0
    )


def _stuart_maxwell_by_hand(t):
    """d' S^-1 d over the first K - 1 classes (every class in a discordant pair)."""
    t = np.asarray(t, float)
    rows, cols = t.sum(axis=1), t.sum(axis=0)
    d = (rows - cols)[:-1]
    s = -(t + t.T)
    np.fill_diagonal(s, rows + cols - 2 * np.diag(t))
    s = s[:-1, :-1]
    return float(d @ np.linalg.solve(s, d))


def test_reader_tests_mcnemar_per_class_and_square_tests_by_hand():
    tests = reader_tests(_readers3(), _model3(), K3, MAL, 0.5)
    assert list(tests.columns) == MULTICLASS_TEST_COLUMNS
    t = tests.set_index(["comparison", "role", "session", "test", "class", "metric"])
    at = ("model vs role", "specialist", "unaided")
    top1 = t.loc[(*at, "mcnemar", "", "top1_accuracy")]
    # model right on A, C, E, G; specialists' vote right on all but E
    assert (top1["n"], top1["b"], top1["c"]) == (7, 1, 3)
    assert (top1["first_rate"], top1["second_rate"]) == pytest.approx((4 / 7, 6 / 7))
    assert top1["exact"] and top1["p_value"] == pytest.approx(0.625)  # binomial, 1 of 4
    # one vs rest, "is this patient class k?": (n, b only model right, c only role right)
    expect = {
        ("benign", "accuracy"): (7, 0, 2),  # model wrong on B (missed) and F (called benign)
        ("benign", "sensitivity"): (2, 0, 1),
        ("benign", "specificity"): (5, 0, 1),
        ("borderline", "accuracy"): (7, 1, 2),  # E only the model right; B, D only the role
        ("malignant", "accuracy"): (7, 1, 2),  # E only the model right; D, F only the role
        ("malignant", "sensitivity"): (3, 1, 1),  # E vs F
        ("malignant", "specificity"): (4, 0, 1),  # D
    }
    for (k, metric), nbc in expect.items():
        row = t.loc[(*at, "mcnemar", k, metric)]
        assert (row["n"], row["b"], row["c"]) == nbc, (k, metric)
    # the one-class positive view is the malignant rows: no extra view rows
    assert set(tests["class"]) == {"", *K3}

    # K x K: model (rows) vs the specialists' vote (columns)
    square = [[1, 0, 1], [1, 1, 0], [0, 2, 1]]
    model_calls_ = ["benign", "borderline", "borderline", "malignant", "malignant", "benign"]
    role_calls = ["benign", "benign", "borderline", "borderline", "borderline", "malignant"]
    assert call_table(model_calls_ + ["malignant"], role_calls + ["malignant"], K3).tolist() == (
        square
    )
    bowker = t.loc[(*at, "bowker", "", "calls")]
    assert bowker["statistic"] == pytest.approx(_bowker_by_hand(square)) == pytest.approx(4.0)
    assert bowker["df"] == 3 and bowker["p_value"] == pytest.approx(chi2.sf(4.0, 3))
    sm = t.loc[(*at, "stuart_maxwell", "", "calls")]
    assert sm["statistic"] == pytest.approx(_stuart_maxwell_by_hand(square))
    assert sm["statistic"] == pytest.approx(0.4)  # d = (0, -1), S = [[2, -1], [-1, 3]]
    assert sm["df"] == 2 and sm["p_value"] == pytest.approx(chi2.sf(0.4, 2))
    assert np.isnan(sm["b"]) and sm["n"] == 7 and not sm["exact"]

    # resident assisted vs unaided on top-1: assisted right on A, C, F in addition
    ru = t.loc[
        ("assisted vs unaided", "resident", "assisted vs unaided", "mcnemar", "", "top1_accuracy")
    ]
    assert (ru["first"], ru["second"], ru["b"], ru["c"]) == (
        "resident assisted",
        "resident unaided",
        3,
        0,
    )
    # the specialists read only unaided: no assisted vs unaided rows for them
    assert not ((tests["role"] == "specialist") & (tests["comparison"] != "model vs role")).any()


def test_positive_view_of_several_classes_gets_its_own_rows():
    tests = reader_tests(_readers3(), _model3(), K3, ["borderline", "malignant"], 0.5)
    view = tests[(tests["class"] == "borderline+malignant") & (tests["role"] == "specialist")]
    assert list(view["metric"]) == ["accuracy", "sensitivity", "specificity"]
    acc = view.set_index("metric").loc["accuracy"]
    # non-benign? model wrong on B (borderline) and F (benign); role right on every patient
    assert (acc["n"], acc["b"], acc["c"]) == (7, 0, 2)


def test_square_tests_with_zero_margins_never_crash():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # a class called by neither rater: left out wherever it stands (statsmodels alone
        # answers NaN when it is not the last class); the rest is McNemar without correction
        for t, dropped in (
            ([[3, 1, 0], [2, 4, 0], [0, 0, 0]], "malignant"),
            ([[3, 0, 1], [0, 0, 0], [2, 0, 4]], "borderline"),
            ([[0, 0, 0], [0, 3, 1], [0, 2, 4]], "benign"),
        ):
            sm = stuart_maxwell_test(t, K3)
            assert sm["statistic"] == pytest.approx((1 - 2) ** 2 / (1 + 2))
            assert sm["df"] == 1 and sm["p_value"] == pytest.approx(chi2.sf(1 / 3, 1))
            assert dropped in sm["note"]
            bw = bowker_test(t, K3)
            assert bw["statistic"] == pytest.approx(1 / 3) and bw["df"] == 1
            assert bw["p_value"] == pytest.approx(sm["p_value"])
        # a class called alike by both (only on the diagonal) is left out too
        sm = stuart_maxwell_test([[3, 1, 0], [2, 4, 0], [0, 0, 5]], K3)
        assert sm["df"] == 1 and "malignant" in sm["note"]
        assert "benign/malignant" in bowker_test([[3, 1, 0], [2, 4, 0], [0, 0, 5]], K3)["note"]
        # perfect agreement: no discordant pair, p = 1 (as McNemar's b + c = 0)
        for test in (stuart_maxwell_test, bowker_test):
            same = test(np.diag([2, 3, 4]), K3)
            assert (same["statistic"], same["p_value"]) == (0.0, 1.0)
            assert "no discordant pair" in same["note"]
            empty = test(np.zeros((3, 3)), K3)
            assert np.isnan(empty["p_value"]) and "no patient" in empty["note"]
        # four classes whose disagreements form two unlinked groups: S is singular
        four = ["a", "b", "c", "d"]
        split = [[3, 1, 0, 0], [2, 3, 0, 0], [0, 0, 4, 1], [0, 0, 3, 2]]
        sm = stuart_maxwell_test(split, four)
        assert np.isnan(sm["statistic"]) and np.isnan(sm["p_value"])
        assert "not computable" in sm["note"]
        assert bowker_test(split, four)["statistic"] == pytest.approx(_bowker_by_hand(split))
        # linked: agrees with statsmodels' own homogeneity and the hand computation
        linked = [[3, 1, 2, 0], [2, 3, 0, 1], [0, 1, 4, 1], [1, 0, 3, 2]]
        assert stuart_maxwell_test(linked, four)["statistic"] == pytest.approx(
            _stuart_maxwell_by_hand(linked)
        )


def test_simulated_readers_with_three_classes():
    n = 1200
    patients = pd.DataFrame({"patient": [f"K{i}" for i in range(3 * n)], "label": K3 * n})
    sim = simulate_readers(patients, MAL, K3, seed=1)
    pd.testing.assert_frame_equal(sim, simulate_readers(patients, MAL, K3, seed=1))
    assert set(sim["call"]) == set(K3) and len(sim) == 12 * len(patients)
    merged = sim.merge(patients, on="patient")
    wrong = merged[merged["call"] != merged["label"]]
    # wrong calls go to the neighbouring class most: 2/3 of benign errors are borderline,
    # borderline errors split evenly, 2/3 of malignant errors are borderline
    share = pd.crosstab(wrong["label"], wrong["call"], normalize="index").reindex(
        index=K3, columns=K3, fill_value=0
    )
    assert np.allclose(share.to_numpy(), confusion_weights(3), atol=0.03)
    assert np.diag(share.to_numpy()).sum() == 0
    # per-class recall: the specificity target for the negative classes, sensitivity for the
    # positive one (specialists unaided: 0.938 and 0.710)
    scores = patients.assign(
        p_benign=np.where(patients["label"] == "benign", 0.8, 0.1),
        p_borderline=np.where(patients["label"] == "borderline", 0.8, 0.1),
        p_malignant=np.where(patients["label"] == "malignant", 0.8, 0.1),
    )
    rows = reader_table(sim, scores, K3, MAL, 0.5).set_index(["level", "role", "session"])
    row = rows.loc[("role", "specialist", "unaided")]
    assert row["sensitivity_benign"] == pytest.approx(0.938, abs=0.04)
    assert row["sensitivity_borderline"] == pytest.approx(0.938, abs=0.04)
    assert row["sensitivity_malignant"] == pytest.approx(0.71, abs=0.06)
    assert rows.loc[("model", "model", "-")]["top1_accuracy"] == 1.0


def test_plot_reader_bars_three_classes(tmp_path):
    out = tmp_path / "readers3.png"
    table = reader_table(_readers3(), _model3(), K3, MAL, 0.5)
    plot_reader_bars(table, out)
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"
