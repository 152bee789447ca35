"""Reader study: radiologists' calls, unaided and AI-assisted, against the model on the same patients.

Input: a readers table (TSV), one row per reader x session x patient, columns

- ``reader``: an id of the reader (no names);
- ``role``: e.g. ``specialist`` or ``resident`` (free text; readers are pooled per role);
- ``session``: ``unaided`` or ``assisted`` (model output shown);
- ``patient``: the pseudonymous patient key used in ``results/`` (``P`` + 10 hex digits);
- ``call``: the class the reader chose (one of ``task.classes``).

Truth comes from the model's patient scores (their ``label`` column), so every patient in the
readers table must have a model score.

**Two classes.** Calls are scored as binary decisions: a call is positive when it names a
``task.positive`` class. The model's call is positive when its positive-class probability
reaches the threshold (see :func:`model_calls`).

**Several classes (K > 2).** Every rater makes one K-class call per patient and everything is
derived from it: the model's call is its most probable class (argmax of ``p_<class>``; the
threshold is not used); the *positive view* (the binary columns: sensitivity etc. of
``task.positive`` vs the rest) asks whether the call names a positive class, exactly as for the
readers; each class ``k`` is also scored one vs rest ("is this patient class k?"). The classes
are taken in task order from the least to the most severe.

:func:`reader_table` gives the study's figure-2 table (accuracy, SS-Avg, sensitivity,
specificity with Wilson intervals; with K > 2 also top-1 accuracy, macro and per-class figures)
per reader x session, per role x session (all calls of the role's readers pooled) and for the
model on the same patients. Pooled calls of several readers on the same patients are not
independent, so the Wilson intervals of role rows are too narrow; read them as descriptive.

Paired tests of the same patients' calls (model vs role, assisted vs unaided) are in
:mod:`gynmri.evaluation.reader_comparisons`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.evaluation.confusion import counts, rates, ratio, wilson_intervals
from gynmri.evaluation.scoring import (
    best_ensemble,
    ensemble_name,
    ensemble_scores,
    positive_score,
    prob_columns,
)
from gynmri.evaluation.stats import wilson_interval

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


def _multiclass(classes) -> bool:
    return classes is not None and len(classes) > 2


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


def model_calls(
    model_scores: pd.DataFrame, positive: list[str], threshold, classes: list[str] | None = None
) -> pd.DataFrame:
    """Return one row per patient: patient, truth (positive?), model_positive (the call).

    ``model_scores``: patient scores (patient, label, p_<class>; one row per patient) of the
    model the readers saw. ``threshold``: a number, or a Series indexed by fold (from
    :func:`gynmri.evaluation.thresholds.per_fold_thresholds`, needs a ``fold`` column); the call
    is positive when the positive-class probability reaches it.

    With more than two ``classes`` the threshold is not used: the model calls its most probable
    class (``model_call``; argmax of ``p_<class>``, an exact tie going to the earlier class as
    everywhere in the pipeline), ``model_positive`` says whether that class is positive, and
    ``label`` (the true class) is added.
    """
    if model_scores["patient"].duplicated().any():
        dup = model_scores.loc[model_scores["patient"].duplicated(), "patient"].iloc[0]
        raise ValueError(f"model scores hold patient '{dup}' more than once (one row per patient)")
    if _multiclass(classes):
        probs = model_scores[prob_columns(classes)].to_numpy(float)
        called = np.asarray(classes, dtype=object)[probs.argmax(axis=1)]
        return pd.DataFrame(
            {
                "patient": model_scores["patient"].to_numpy(),
                "truth": model_scores["label"].isin(positive).to_numpy(),
                "model_positive": np.isin(called, positive),
                "label": model_scores["label"].to_numpy(),
                "model_call": called,
            }
        )
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


def class_rates(labels, called, classes: list[str]) -> dict:
    """Top-1 accuracy, macro and per-class (one vs rest) figures of K-class calls.

    Returns ``top1_accuracy`` (share of calls naming the true class, Wilson ``_lo``/``_hi``),
    ``macro_sensitivity`` (mean per-class recall: the balanced accuracy), ``macro_specificity``,
    ``macro_ss_avg`` (mean per-class SS-Avg; the macro means are NaN when a class has no
    patient, as in :mod:`gynmri.evaluation.confusion`), then per class ``c``
    ``sensitivity_<c>`` (share of class-c patients called c) and ``specificity_<c>`` (share of
    the others not called c), each with Wilson ``_lo``/``_hi``.
    """
    labels, called = np.asarray(labels, dtype=object), np.asarray(called, dtype=object)
    right = int((labels == called).sum())
    out = {"top1_accuracy": ratio(right, len(labels))}
    out["top1_accuracy_lo"], out["top1_accuracy_hi"] = wilson_interval(right, len(labels))
    per_class, sens, spec, ss = {}, [], [], []
    for k in classes:
        c = counts(labels == k, called == k)
        every = {**rates(c), **wilson_intervals(c)}
        for m in ("sensitivity", "specificity"):
            for e in ("", "_lo", "_hi"):
                per_class[f"{m}_{k}{e}"] = every[f"{m}{e}"]
        sens.append(every["sensitivity"])
        spec.append(every["specificity"])
        ss.append(every["ss_avg"])
    out["macro_sensitivity"] = float(np.mean(sens))  # NaN when a class is undefined
    out["macro_specificity"] = float(np.mean(spec))
    out["macro_ss_avg"] = float(np.mean(ss))
    return {**out, **per_class}


def _scores(part: pd.DataFrame, positive_col: str, call_col: str, classes) -> dict:
    """The binary (positive view) figures of a set of calls, and with K > 2 the class ones."""
    out = _rates(part["truth"], part[positive_col])
    if _multiclass(classes):
        out.update(class_rates(part["label"], part[call_col], classes))
    return out


def _prepare(readers, model_scores, classes, positive, threshold):
    """Validated readers joined with truth and the model's call per patient."""
    calls = model_calls(model_scores, positive, threshold, classes)
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
    and ss_avg, of the binary (positive) view. Role rows pool every call of the role's readers in
    that session. The model row (role and reader 'model', session '-') is the model's call on
    every patient in the readers table (see :func:`model_calls`: at ``threshold`` for two
    classes, the most probable class for more).

    With more than two classes each row also has the columns of :func:`class_rates`:
    top1_accuracy (+ ``_lo``/``_hi``), macro_sensitivity (balanced accuracy), macro_specificity,
    macro_ss_avg, and per class ``c`` in task order sensitivity_<c> and specificity_<c> (one vs
    rest, each + ``_lo``/``_hi``). Two classes: exactly the columns above.
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
                        **_scores(part, "reader_positive", "call", classes),
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
            **_scores(read, "model_positive", "model_call", classes),
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
                        **_scores(part, "reader_positive", "call", classes),
                    }
                )
    return pd.DataFrame(rows)


def plot_metrics(table: pd.DataFrame) -> list[tuple[str, str]]:
    """Return the (column, label) groups of the reader figure for a :func:`reader_table`:
    :data:`PLOT_METRICS` for two classes; with more, top-1 accuracy, macro sensitivity
    (balanced accuracy), macro SS-Avg and each class's sensitivity (one vs rest)."""
    if "top1_accuracy" not in table.columns:
        return PLOT_METRICS
    classes = [
        c.removeprefix("sensitivity_")
        for c in table.columns
        if c.startswith("sensitivity_") and f"{c}_lo" in table.columns
    ]
    return [
        ("top1_accuracy", "top-1 accuracy"),
        ("macro_sensitivity", "macro sens."),
        ("macro_ss_avg", "macro SS-Avg"),
        *[(f"sensitivity_{c}", f"sens. {c}") for c in classes],
    ]


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
