"""Reader study, paired tests: the model against each role, and assisted against unaided, on the
same patients (the readers table: :mod:`gynmri.evaluation.readers`).

:func:`reader_tests` gives paired tests on the same patients; there a role's call on a patient
is the majority vote of its readers (:func:`majority_calls`): with two classes **a tie counts as
a positive call** (a positive call is the cautious reading); with K > 2 the role calls the most
frequent class, **a tie going to the more severe class** (the later one in task order), and its
positive view is whether that class is positive. Tests: McNemar on correctness (two classes: of
the binary decision; K > 2: top-1, one vs rest per class and the positive view), and with K > 2
the K x K tests of the two raters' calls: Stuart-Maxwell (marginal homogeneity: do both call the classes equally often?) and Bowker
(symmetry: are the disagreements k -> j as frequent as j -> k?).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gynmri.evaluation.readers import MODEL, SESSIONS, _multiclass, _ordered_roles, _prepare
from gynmri.evaluation.square_tests import bowker_test, call_table, stuart_maxwell_test
from gynmri.evaluation.stats import mcnemar_test

#: Columns of :func:`reader_tests` with more than two classes (two classes: no test, class,
#: df and note columns, as before).
MULTICLASS_TEST_COLUMNS = [
    "comparison",
    "role",
    "session",
    "test",
    "class",
    "metric",
    "first",
    "second",
    "first_rate",
    "second_rate",
    "n",
    "b",
    "c",
    "statistic",
    "df",
    "p_value",
    "exact",
    "note",
]


def majority_calls(
    table: pd.DataFrame, classes: list[str] | None = None, positive: list[str] | None = None
) -> pd.DataFrame:
    """Return one call per role x session x patient by majority vote of its readers.

    ``table`` needs columns role, session, patient, reader_positive. Returns role, session,
    patient, positive_votes, n_readers and role_positive. With two classes (``classes`` not
    given, or two) a tie (as many positive as negative calls) counts as a POSITIVE call.

    With more than two ``classes`` (``table`` then also needs ``call``; ``positive`` is
    required) the role calls the most frequent class (``role_call``), a tie going to the MORE
    SEVERE class, the later one in task order; ``role_positive`` is then whether that class is
    positive (it may differ from the majority of ``positive_votes``), and ``votes_<class>``
    count the calls of each class.
    """
    keys = ["role", "session", "patient"]
    votes = table.groupby(keys, sort=False)["reader_positive"].agg(["sum", "size"])
    votes["role_positive"] = 2 * votes["sum"] >= votes["size"]
    if _multiclass(classes):
        if positive is None:
            raise ValueError("majority_calls needs the positive classes with several classes")
        tally = (
            table.groupby(keys, sort=False)["call"]
            .value_counts()
            .unstack(fill_value=0)
            .reindex(index=votes.index, columns=classes, fill_value=0)
        )
        m = tally.to_numpy()
        last_most = len(classes) - 1 - m[:, ::-1].argmax(axis=1)  # ties: the later class
        votes["role_call"] = np.asarray(classes, dtype=object)[last_most]
        votes["role_positive"] = votes["role_call"].isin(positive)
        for k in classes:
            votes[f"votes_{k}"] = tally[k].to_numpy()
    return votes.rename(columns={"sum": "positive_votes", "size": "n_readers"}).reset_index()


_SUBSETS = (("accuracy", None), ("sensitivity", True), ("specificity", False))
_NO_TEST = {"n": 0, "b": 0, "c": 0, "statistic": np.nan, "p_value": np.nan, "exact": True}


def _paired_rows(first: str, second: str, truth, correct_a, correct_b, **ids) -> list[dict]:
    """McNemar rows on all patients (accuracy), positives (sensitivity), negatives (spec.)."""
    rows = []
    truth = np.asarray(truth, bool)
    for metric, subset in _SUBSETS:
        keep = np.ones_like(truth) if subset is None else truth == subset
        a, b = np.asarray(correct_a, bool)[keep], np.asarray(correct_b, bool)[keep]
        test = mcnemar_test(a, b) if len(a) else dict(_NO_TEST)
        rows.append(
            {
                **ids,
                "metric": metric,
                "first": first,
                "second": second,
                "first_rate": a.mean() if len(a) else np.nan,
                "second_rate": b.mean() if len(b) else np.nan,
                **test,
            }
        )
    return rows


def _mcnemar_row(first: str, second: str, metric: str, a, b, class_: str, ids: dict) -> dict:
    """A McNemar row of :data:`MULTICLASS_TEST_COLUMNS` (correctness ``a`` vs ``b``)."""
    test = mcnemar_test(a, b) if len(a) else dict(_NO_TEST)
    if not len(a):
        note = "not computable: no patient"
    elif test["b"] + test["c"] == 0:
        note = "no discordant pair (p = 1)"
    else:
        note = ""
    return {
        **ids,
        "test": "mcnemar",
        "class": class_,
        "metric": metric,
        "first": first,
        "second": second,
        "first_rate": a.mean() if len(a) else np.nan,
        "second_rate": b.mean() if len(b) else np.nan,
        **test,
        "df": np.nan if test["exact"] or not len(a) else 1,
        "note": note,
    }


def _square_rows(first: str, second: str, calls_a, calls_b, classes, ids: dict) -> list[dict]:
    """Stuart-Maxwell and Bowker rows on the K x K table of the two raters' calls."""
    square = call_table(calls_a, calls_b, classes)
    return [
        {
            **ids,
            "test": name,
            "class": "",
            "metric": "calls",
            "first": first,
            "second": second,
            "first_rate": np.nan,
            "second_rate": np.nan,
            "n": len(calls_a),
            "b": np.nan,
            "c": np.nan,
            **test(square, classes),
            "exact": False,
        }
        for name, test in (("stuart_maxwell", stuart_maxwell_test), ("bowker", bowker_test))
    ]


def _class_rows(
    first: str, second: str, labels, calls_a, calls_b, classes, positive, **ids
) -> list[dict]:
    """The K-class comparison of two raters on the same patients (rows of
    :data:`MULTICLASS_TEST_COLUMNS`; see :func:`reader_tests`)."""
    labels = np.asarray(labels, dtype=object)
    calls_a, calls_b = np.asarray(calls_a, dtype=object), np.asarray(calls_b, dtype=object)
    top1 = _mcnemar_row(
        first, second, "top1_accuracy", calls_a == labels, calls_b == labels, "", ids
    )
    rows = [top1, *_square_rows(first, second, calls_a, calls_b, classes, ids)]
    views = [[k] for k in classes] + ([list(positive)] if len(positive) > 1 else [])
    for view in views:
        truth = np.isin(labels, view)
        right_a = np.isin(calls_a, view) == truth
        right_b = np.isin(calls_b, view) == truth
        for metric, subset in _SUBSETS:
            keep = np.ones_like(truth) if subset is None else truth == subset
            rows.append(
                _mcnemar_row(
                    first, second, metric, right_a[keep], right_b[keep], "+".join(view), ids
                )
            )
    return rows


def _compare(first: str, second: str, truth, a, b, classes, positive, **ids) -> list[dict]:
    """The rows comparing calls ``a`` (of ``first``) with ``b`` (of ``second``) on the same
    patients: K-class calls and true classes with K > 2, else positive calls and truth."""
    if _multiclass(classes):
        return _class_rows(first, second, truth, a, b, classes, positive, **ids)
    truth = np.asarray(truth, bool)
    correct_a = np.asarray(a, bool) == truth
    correct_b = np.asarray(b, bool) == truth
    return _paired_rows(first, second, truth, correct_a, correct_b, **ids)


def _vote_columns(classes) -> tuple[str, str, str]:
    """The columns (truth, model call, role call) of the votes that the tests compare."""
    if _multiclass(classes):
        return "label", "model_call", "role_call"
    return "truth", "model_positive", "role_positive"


def _model_vs_role_rows(votes: pd.DataFrame, role: str, classes, positive) -> list[dict]:
    """Model vs the role's majority calls, per session the role read."""
    truth, model, call = _vote_columns(classes)
    rows = []
    for session in SESSIONS:
        part = votes[(votes["role"] == role) & (votes["session"] == session)]
        if len(part):
            rows += _compare(
                MODEL,
                f"{role} {session}",
                part[truth],
                part[model],
                part[call],
                classes,
                positive,
                comparison="model vs role",
                role=role,
                session=session,
            )
    return rows


def _assisted_vs_unaided_rows(votes: pd.DataFrame, role: str, classes, positive) -> list[dict]:
    """The role's assisted vs unaided majority calls, on the patients read in both sessions."""
    truth, _, call = _vote_columns(classes)
    un = votes[(votes["role"] == role) & (votes["session"] == "unaided")]
    As = votes[(votes["role"] == role) & (votes["session"] == "assisted")]
    both = un.merge(As, on="patient", suffixes=("_u", "_a"))
    if not len(both):
        return []
    return _compare(
        f"{role} assisted",
        f"{role} unaided",
        both[f"{truth}_u"],
        both[f"{call}_a"],
        both[f"{call}_u"],
        classes,
        positive,
        comparison="assisted vs unaided",
        role=role,
        session="assisted vs unaided",
    )


def reader_tests(
    readers: pd.DataFrame,
    model_scores: pd.DataFrame,
    classes: list[str],
    positive: list[str],
    threshold,
) -> pd.DataFrame:
    """Return paired tests of the same patients' calls.

    - model vs each role, per session: the role's call on a patient is the majority vote of its
      readers (:func:`majority_calls`; two classes: a tie is a positive call; more: a tie goes
      to the more severe class);
    - assisted vs unaided, per role, on the patients read in both sessions.

    **Two classes**: McNemar tests of correctness, on all patients (metric accuracy), on the
    positive patients only (sensitivity) and on the negative ones (specificity). Columns:
    comparison, role, session, metric, first, second, first_rate, second_rate (share correct), n,
    b (only first correct), c (only second correct), statistic, p_value, exact (see
    :func:`gynmri.evaluation.stats.mcnemar_test`).

    **More than two classes**: columns :data:`MULTICLASS_TEST_COLUMNS`, the above plus test
    (mcnemar | stuart_maxwell | bowker), class, df and note (why a test is not computable, or
    what was left out). Per comparison, in this order:

    - McNemar of top-1 correctness (the call names the true class; class '', metric
      top1_accuracy);
    - Stuart-Maxwell (:func:`stuart_maxwell_test`) and Bowker (:func:`bowker_test`) on the K x K
      table of the first rater's calls (rows) against the second's (class '', metric calls;
      first_rate, second_rate, b and c empty): they compare the calls, not their correctness;
    - per class k (class k), McNemar of the one-vs-rest correctness of "is this patient class
      k?" (call is k iff the patient is k) on all patients (metric accuracy), on the class-k
      patients (sensitivity: called k) and on the others (specificity: not called k), and the
      same for the positive view when ``positive`` holds several classes (class: the positive
      classes joined by '+'); with one positive class its view is that class's rows.

    McNemar df: 1 for the chi-square version, empty for the exact binomial one. p-values are
    not corrected for multiple comparisons.
    """
    table, calls = _prepare(readers, model_scores, classes, positive, threshold)
    votes = majority_calls(table, classes, positive).merge(calls, on="patient", how="left")
    rows = []
    for role in _ordered_roles(table):
        rows += _model_vs_role_rows(votes, role, classes, positive)
        rows += _assisted_vs_unaided_rows(votes, role, classes, positive)
    return pd.DataFrame(rows, columns=MULTICLASS_TEST_COLUMNS if _multiclass(classes) else None)
