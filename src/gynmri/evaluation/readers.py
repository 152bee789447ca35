"""Reader study: radiologists' calls, unaided and AI-assisted, against the model on the same patients.

Input: a readers table (TSV), one row per reader x session x patient, columns

- ``reader``: an id of the reader (no names);
- ``role``: e.g. ``specialist`` or ``resident`` (free text; readers are pooled per role);
- ``session``: ``unaided`` or ``assisted`` (model output shown);
- ``patient``: the pseudonymous patient key used in ``results/`` (``P`` + 10 hex digits);
- ``call``: the class the reader chose (one of ``task.classes``).

Truth comes from the model's patient scores (their ``label`` column), so every patient in the
readers table must have a model score. Calls are scored as binary decisions: a call is positive
when it names a ``task.positive`` class, and "correct" means the binary decision matches the
truth (for two classes that is the class itself).

:func:`reader_table` gives the study's figure-2 table (accuracy, SS-Avg, sensitivity,
specificity with Wilson intervals) per reader x session, per role x session (all calls of the
role's readers pooled) and for the model on the same patients. Pooled calls of several readers
on the same patients are not independent, so the Wilson intervals of role rows are too narrow;
read them as descriptive. :func:`reader_tests` gives paired McNemar tests; there a role's call on
a patient is the majority vote of its readers, **a tie counting as a positive call** (a
positive call is the cautious reading).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.evaluation.confusion import counts, rates, wilson_intervals
from gynmri.evaluation.scoring import best_ensemble, ensemble_name, ensemble_scores, positive_score
from gynmri.evaluation.stats import mcnemar_test

SESSIONS = ("unaided", "assisted")
READER_COLUMNS = ["reader", "role", "session", "patient", "call"]
MODEL = "model"
PLOT_METRICS = [
    ("accuracy", "accuracy"),
    ("ss_avg", "SS-Avg"),
    ("sensitivity", "sensitivity"),
    ("specificity", "specificity"),
]
_MAX_LISTED = 10


def _where(readers: pd.DataFrame, i: int) -> str:
    row = readers.iloc[i]
    return (
        f"readers table row {i + 1} (file line {i + 2}; reader '{row.get('reader')}', "
        f"session '{row.get('session')}', patient '{row.get('patient')}')"
    )


def _raise(problems: list[str]) -> None:
    if problems:
        more = len(problems) - _MAX_LISTED
        listed = problems[:_MAX_LISTED] + ([f"... and {more} more"] if more > 0 else [])
        raise ValueError("invalid readers table:\n  " + "\n  ".join(listed))


def validate_readers(readers: pd.DataFrame, classes: list[str], patients=None) -> pd.DataFrame:
    """Return the readers table with whitespace stripped, or raise ValueError naming the rows.

    Checks: the five columns exist; no empty cell; session is unaided/assisted; call is one of
    ``classes``; patient is among ``patients`` (the keys the model scored) when given; a reader
    has one role; no reader reads a patient twice in a session.
    """
    missing = [c for c in READER_COLUMNS if c not in readers.columns]
    if missing:
        raise ValueError(
            f"readers table lacks column(s) {missing}; expected columns {READER_COLUMNS} "
            f"(got {list(readers.columns)})"
        )
    table = readers[READER_COLUMNS].reset_index(drop=True).copy()
    for col in READER_COLUMNS:
        table[col] = table[col].map(lambda v: "" if pd.isna(v) else str(v).strip())
    known = set(patients) if patients is not None else None
    problems = []
    for i, row in enumerate(table.itertuples(index=False)):
        empty = [c for c in READER_COLUMNS if getattr(row, c) == ""]
        if empty:
            problems.append(f"{_where(table, i)}: empty {', '.join(empty)}")
            continue
        if row.session not in SESSIONS:
            problems.append(
                f"{_where(table, i)}: unknown session '{row.session}' "
                f"(expected one of {', '.join(SESSIONS)})"
            )
        if row.call not in classes:
            problems.append(
                f"{_where(table, i)}: unknown call '{row.call}' "
                f"(expected one of {', '.join(classes)})"
            )
        if known is not None and row.patient not in known:
            problems.append(
                f"{_where(table, i)}: patient '{row.patient}' has no model score "
                "(not in the evaluated cohort; use the pseudonymous key)"
            )
    _raise(problems)
    roles = table.groupby("reader")["role"].unique()
    for reader, rs in roles[roles.map(len) > 1].items():
        first = int(np.flatnonzero(table["reader"] == reader)[0])
        problems.append(
            f"reader '{reader}' has several roles {sorted(rs)} (first at {_where(table, first)})"
        )
    dup = table.duplicated(["reader", "session", "patient"], keep="first")
    for i in np.flatnonzero(dup):
        problems.append(
            f"{_where(table, int(i))}: the reader already read this patient in this session"
        )
    _raise(problems)
    return table


def read_readers(path: str | Path, classes: list[str], patients=None) -> pd.DataFrame:
    """Read and validate a readers TSV (see :func:`validate_readers`)."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return validate_readers(table, classes, patients)


def model_calls(model_scores: pd.DataFrame, positive: list[str], threshold) -> pd.DataFrame:
    """Return one row per patient: patient, truth (positive?), model_positive (the call).

    ``model_scores``: patient scores (patient, label, p_<class>; one row per patient) of the
    model the readers saw. ``threshold``: a number, or a Series indexed by fold (from
    :func:`gynmri.evaluation.thresholds.per_fold_thresholds`, needs a ``fold`` column).
    """
    if model_scores["patient"].duplicated().any():
        dup = model_scores.loc[model_scores["patient"].duplicated(), "patient"].iloc[0]
        raise ValueError(f"model scores hold patient '{dup}' more than once (one row per patient)")
    if isinstance(threshold, pd.Series):
        thr = model_scores["fold"].map(threshold)
        if thr.isna().any():
            raise ValueError("threshold Series lacks some folds of the model scores")
        thr = thr.to_numpy(float)
    else:
        thr = float(threshold)
    return pd.DataFrame(
        {
            "patient": model_scores["patient"].to_numpy(),
            "truth": model_scores["label"].isin(positive).to_numpy(),
            "model_positive": positive_score(model_scores, positive) >= thr,
        }
    )


_RATE_COLUMNS = [
    f"{m}{e}" for m in ("accuracy", "sensitivity", "specificity") for e in ("", "_lo", "_hi")
]


def _rates(truth: np.ndarray, called: np.ndarray) -> dict:
    """Counts, accuracy, sensitivity, specificity (with Wilson CIs) and SS-Avg of calls."""
    c = counts(truth, called)
    every = {**rates(c), **wilson_intervals(c)}
    return {
        "n": len(np.asarray(truth)),
        **c,
        **{k: every[k] for k in _RATE_COLUMNS},
        "ss_avg": every["ss_avg"],
    }


def _prepare(readers, model_scores, classes, positive, threshold):
    """Validated readers joined with truth and the model's call per patient."""
    calls = model_calls(model_scores, positive, threshold)
    table = validate_readers(readers, classes, calls["patient"])
    table = table.merge(calls, on="patient", how="left")
    table["reader_positive"] = table["call"].isin(positive)
    return table, calls


def _ordered_roles(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(table["role"]))


def reader_table(
    readers: pd.DataFrame,
    model_scores: pd.DataFrame,
    classes: list[str],
    positive: list[str],
    threshold,
) -> pd.DataFrame:
    """Return the figure-2 table: per role x session, the model, and per reader x session.

    Columns: level (role | model | reader), role, reader, session, n_readers, n_patients, n
    (calls), tp, fp, tn, fn, accuracy, sensitivity, specificity (each with Wilson ``_lo``/``_hi``)
    and ss_avg. Role rows pool every call of the role's readers in that session. The model row
    (role and reader 'model', session '-') is the model's call on every patient in the readers
    table, at ``threshold`` (see :func:`model_calls`).
    """
    table, calls = _prepare(readers, model_scores, classes, positive, threshold)
    rows = []
    for role in _ordered_roles(table):
        for session in SESSIONS:
            part = table[(table["role"] == role) & (table["session"] == session)]
            if len(part):
                rows.append(
                    {
                        "level": "role",
                        "role": role,
                        "reader": "",
                        "session": session,
                        "n_readers": part["reader"].nunique(),
                        "n_patients": part["patient"].nunique(),
                        **_rates(part["truth"], part["reader_positive"]),
                    }
                )
    read = calls[calls["patient"].isin(table["patient"])]
    rows.append(
        {
            "level": MODEL,
            "role": MODEL,
            "reader": MODEL,
            "session": "-",
            "n_readers": 0,
            "n_patients": len(read),
            **_rates(read["truth"], read["model_positive"]),
        }
    )
    for (role, reader), part_r in table.groupby(["role", "reader"], sort=False):
        for session in SESSIONS:
            part = part_r[part_r["session"] == session]
            if len(part):
                rows.append(
                    {
                        "level": "reader",
                        "role": role,
                        "reader": reader,
                        "session": session,
                        "n_readers": 1,
                        "n_patients": part["patient"].nunique(),
                        **_rates(part["truth"], part["reader_positive"]),
                    }
                )
    return pd.DataFrame(rows)


def majority_calls(table: pd.DataFrame) -> pd.DataFrame:
    """Return one positive call per role x session x patient by majority vote of its readers.

    ``table`` needs columns role, session, patient, reader_positive. A tie (as many positive as
    negative calls) counts as a POSITIVE call.
    """
    votes = table.groupby(["role", "session", "patient"], sort=False)["reader_positive"].agg(
        ["sum", "size"]
    )
    votes["role_positive"] = 2 * votes["sum"] >= votes["size"]
    return votes.rename(columns={"sum": "positive_votes", "size": "n_readers"}).reset_index()


_SUBSETS = (("accuracy", None), ("sensitivity", True), ("specificity", False))


def _paired_rows(first: str, second: str, truth, correct_a, correct_b, **ids) -> list[dict]:
    """McNemar rows on all patients (accuracy), positives (sensitivity), negatives (spec.)."""
    rows = []
    truth = np.asarray(truth, bool)
    for metric, subset in _SUBSETS:
        keep = np.ones_like(truth) if subset is None else truth == subset
        a, b = np.asarray(correct_a, bool)[keep], np.asarray(correct_b, bool)[keep]
        test = (
            mcnemar_test(a, b)
            if len(a)
            else {"n": 0, "b": 0, "c": 0, "statistic": np.nan, "p_value": np.nan, "exact": True}
        )
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


def reader_tests(
    readers: pd.DataFrame,
    model_scores: pd.DataFrame,
    classes: list[str],
    positive: list[str],
    threshold,
) -> pd.DataFrame:
    """Return paired McNemar tests of correctness on the same patients.

    - model vs each role, per session: the role's call on a patient is the majority vote of its
      readers (:func:`majority_calls`; a tie is a positive call);
    - assisted vs unaided, per role, on the patients read in both sessions.

    Each comparison is tested on all patients (metric accuracy), on the positive patients only
    (sensitivity) and on the negative ones (specificity). Columns: comparison, role, session,
    metric, first, second, first_rate, second_rate (share correct), n, b (only first correct),
    c (only second correct), statistic, p_value, exact (see :func:`gynmri.evaluation.stats.mcnemar_test`).
    p-values are not corrected for multiple comparisons.
    """
    table, calls = _prepare(readers, model_scores, classes, positive, threshold)
    votes = majority_calls(table).merge(calls, on="patient", how="left")
    votes["role_correct"] = votes["role_positive"] == votes["truth"]
    votes["model_correct"] = votes["model_positive"] == votes["truth"]
    rows = []
    for role in _ordered_roles(table):
        for session in SESSIONS:
            part = votes[(votes["role"] == role) & (votes["session"] == session)]
            if len(part):
                rows += _paired_rows(
                    MODEL,
                    f"{role} {session}",
                    part["truth"],
                    part["model_correct"],
                    part["role_correct"],
                    comparison="model vs role",
                    role=role,
                    session=session,
                )
        un = votes[(votes["role"] == role) & (votes["session"] == "unaided")]
        As = votes[(votes["role"] == role) & (votes["session"] == "assisted")]
        both = un.merge(As, on="patient", suffixes=("_u", "_a"))
        if len(both):
            rows += _paired_rows(
                f"{role} assisted",
                f"{role} unaided",
                both["truth_u"],
                both["role_correct_a"],
                both["role_correct_u"],
                comparison="assisted vs unaided",
                role=role,
                session="assisted vs unaided",
            )
    return pd.DataFrame(rows)


def readers_by_key(readers: pd.DataFrame, dir_to_key: dict[str, str]) -> pd.DataFrame:
    """Return a readers table keyed by pseudonymous patient keys instead of patient folders.

    The table a user writes names patients by ``patient_dir`` (as in the cases table); a
    ``patient`` column of keys is accepted as it is.
    """
    if "patient" in readers.columns:
        return readers
    if "patient_dir" not in readers.columns:
        raise ValueError(f"readers table needs a patient_dir column (got {list(readers.columns)})")
    unknown = readers.index[~readers["patient_dir"].isin(dir_to_key)]
    if len(unknown):
        raise ValueError(f"readers table row {unknown[0] + 2}: patient_dir not in the cases table")
    return readers.assign(patient=readers["patient_dir"].map(dir_to_key)).drop(
        columns="patient_dir"
    )


def study_model_scores(
    predictions: pd.DataFrame, ensembles: pd.DataFrame, classes: list[str], evaluate: dict
) -> tuple[str, pd.DataFrame]:
    """Return (name, patient scores) of the model shown to readers: the best ensemble."""
    members = best_ensemble(ensembles)
    return ensemble_name(members), ensemble_scores(predictions, members, classes, evaluate)
