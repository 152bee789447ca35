"""The evaluation's tables: per sequence and ensemble (binary, with the best ensemble's ROC),
and per score set the per-class rows (one vs rest, with a macro row), the K x K confusion matrix
and the task's named binary summaries (config task/summaries)."""

from __future__ import annotations

import pandas as pd

from gynmri.evaluation.classes import multiclass_metrics
from gynmri.evaluation.metrics import evaluate_all, row_metrics, shown_ensembles
from gynmri.evaluation.scoring import positive_score, score_sets


def summary_metrics(
    scores: pd.DataFrame,
    summaries: dict[str, list[str]],
    threshold,
    *,
    n_boot: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Return one row of binary metrics per named summary (name -> its positive classes).

    Each summary calls a patient positive when the summed probability of its positive classes
    reaches ``threshold``; intervals as in :func:`metrics_with_ci` when ``n_boot > 0``.
    """
    rows = []
    for name, positive in summaries.items():
        truth = scores["label"].isin(positive).to_numpy()
        row = row_metrics(truth, positive_score(scores, positive), threshold, n_boot, seed, True)
        rows.append({"summary": name, "positive": "+".join(positive), **row})
    return pd.DataFrame(rows)


def task_summaries(task: dict) -> dict[str, list[str]]:
    """Return the task's named binary summaries; the positive classes when none is configured."""
    named = task["summaries"]
    return dict(named) if named else {"+".join(task["positive"]) + "_vs_rest": task["positive"]}


def class_tables(
    sets: dict[str, pd.DataFrame],
    classes: list[str],
    summaries: dict[str, list[str]],
    threshold,
    *,
    n_boot: int = 0,
    seed: int = 0,
    kinds: dict[str, str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Return the per-class, confusion and binary-summary tables of named patient-score sets.

    ``sets``: name -> patient scores (patient, fold, label, p_<class>); ``kinds``: name -> what
    the set is (sequence, ensemble, fusion), written in a ``kind`` column. Keys of the result:
    ``classes`` (one row per set and class plus a 'macro' row), ``confusion`` and ``summaries``.
    """
    kinds = kinds or {}
    per_class, confusion, binary = [], [], []
    for name, scores in sets.items():
        ids = {"scores": name, "kind": kinds.get(name, "")}
        summary, rows, matrix = multiclass_metrics(scores, classes, n_boot=n_boot, seed=seed)
        per_class.append(rows.assign(**ids))
        macro = {
            "class": "macro",
            "n": len(scores),
            "sensitivity": rows["sensitivity"].mean(skipna=False),
            "specificity": rows["specificity"].mean(skipna=False),
            "ss_avg": summary["macro_ss_avg"],
            "auc": summary["macro_auc"],
            "top1_accuracy": summary["top1_accuracy"],
        }
        macro.update(
            {k.removeprefix("macro_"): v for k, v in summary.items() if k.endswith(("_lo", "_hi"))}
        )
        per_class.append(pd.DataFrame([{**macro, **ids}]))
        confusion.append(matrix.assign(**ids))
        binary.append(
            summary_metrics(scores, summaries, threshold, n_boot=n_boot, seed=seed).assign(**ids)
        )
    front = ["scores", "kind"]

    def ordered(frames: list[pd.DataFrame]) -> pd.DataFrame:
        table = pd.concat(frames, ignore_index=True)
        return table[front + [c for c in table.columns if c not in front]]

    return {
        "classes": ordered(per_class),
        "confusion": ordered(confusion),
        "summaries": ordered(binary),
    }


def evaluation_tables(
    predictions: pd.DataFrame, folds: pd.DataFrame, task: dict, sequences: list[str], evaluate: dict
) -> dict[str, pd.DataFrame]:
    """Return every table of the evaluate rule by output name: sequences, ensembles, roc,
    classes, confusion, summaries (see README "Outputs and data contracts")."""
    classes = task["classes"]
    per_sequence, ensembles, roc = evaluate_all(
        predictions, folds, classes, task["positive"], sequences, evaluate
    )
    # per-class tables for every sequence and the ensembles the report shows in detail
    shown = shown_ensembles(ensembles, evaluate["top_ensembles"])
    sets = score_sets(predictions, classes, sequences, evaluate, shown)
    kinds = {name: "sequence" if name in sequences else "ensemble" for name in sets}
    tables = class_tables(
        sets,
        classes,
        task_summaries(task),
        evaluate["threshold"],
        kinds=kinds,
        n_boot=evaluate["bootstrap"],
        seed=evaluate["seed"],
    )
    return {"sequences": per_sequence, "ensembles": ensembles, "roc": roc, **tables}
