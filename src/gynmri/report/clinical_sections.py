"""The report's clinical-evaluation sections: external validation, calibration, decision curves
and subgroups (tables of :mod:`gynmri.evaluation.clinical`), each skipped when its table was not
produced."""

from __future__ import annotations

import html

import pandas as pd

from gynmri.evaluation.clinical import BEST
from gynmri.evaluation.decision import net_benefit_at
from gynmri.report.page import png, table


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def best_name(frame: pd.DataFrame) -> str:
    """The best ensemble's model name in a clinical table."""
    return next(m for m in frame["model"].unique() if str(m).startswith(BEST))


def _with_intervals(df: pd.DataFrame, columns) -> pd.DataFrame:
    """``df`` with each of ``columns`` as text 'value (lo to hi)' and its interval columns gone."""
    df = df.copy()
    for col in columns:
        lo, hi = df.pop(f"{col}_lo"), df.pop(f"{col}_hi")
        df[col] = [
            "" if pd.isna(v) else f"{v:.3f}" + (f" ({a:.3f} to {b:.3f})" if pd.notna(a) else "")
            for v, a, b in zip(df[col], lo, hi, strict=True)
        ]
    return df


def external_section(r) -> list[str]:
    """Internal (cross-validated) vs external (hospital held out) metrics per hospital."""
    if r.external is None:
        return []
    scheme = r.config["folds"]["scheme"]
    shown = r.external[r.external["model"] == best_name(r.external)].drop(columns="model")
    others = r.external[r.external["hospital"] == "all"]
    what = (
        "Internal: the k-fold cross-validation (the hospital's patients scored by models trained "
        "on every hospital, itself included). External: leave one hospital out (its patients "
        "scored by models that never saw a patient of it, trained on the other hospitals)."
        if scheme == "both"
        else "Every fold of this run holds one hospital out (folds/scheme centre): all figures "
        "of the report are external; set folds/scheme both to set internal figures beside them."
    )
    return [
        "<h2>External validation (leave one hospital out)</h2>",
        _note(f"{what} Rows 'all' pool the hospitals. Best ensemble of the internal ranking."),
        table(shown, r.percent),
        "<h3>Every sequence, hospitals pooled</h3>",
        table(others.drop(columns="hospital"), r.percent),
    ]


def calibration_section(r) -> list[str]:
    """Brier, scaled Brier, ECE, calibration intercept and slope; reliability diagram."""
    if r.calibration is None:
        return []
    method = r.config["evaluate"]["recalibrate"]
    after = (
        f" Recalibration: {html.escape(method)}, each test fold's map fitted on the other folds' "
        "out-of-fold scores only (the test fold never informs its own map); every other table "
        "of the report uses the raw probabilities."
        if method
        else " No recalibration (evaluate/recalibrate: platt or isotonic adds it)."
    )
    multi = (
        " With several classes: the positive view, each class one vs rest, and the multiclass "
        "Brier score (row 'all classes': mean over patients of the summed squared errors)."
        if r.multiclass
        else ""
    )
    shown = _with_intervals(r.calibration, ("intercept", "slope")).round(3)
    return [
        "<h2>Calibration</h2>",
        _note(
            "Patient level, out of fold. Calibration slope 1 and intercept 0 (calibration in the "
            "large) are perfect; a slope below 1 means too extreme probabilities. Scaled Brier = "
            "1 - Brier / Brier of the prevalence (0: no better than the prevalence). ECE: mean "
            "|observed - predicted| over 10 equal-width bins, weighted by patients. Slope and "
            "intercept intervals: 95 % Wald; NaN where the classes are separated (slope not "
            f"estimable).{after}{multi}"
        ),
        table(shown),
        png(r.figures["calibration"]),
    ]


def at_decision_points(decision: pd.DataFrame, points) -> pd.DataFrame:
    """The rows of each model's decision curve at ``points`` (evaluate/decision_points), each
    matched to the nearest threshold of the curve's grid."""
    return pd.concat(
        [net_benefit_at(curve, points) for _, curve in decision.groupby("model", sort=False)],
        ignore_index=True,
    )


def decision_section(r) -> list[str]:
    """Net benefit at the configured thresholds and the decision curves."""
    if r.decision is None:
        return []
    at = at_decision_points(r.decision, r.config["evaluate"]["decision_points"])
    wide = at.pivot_table(index="model", columns="threshold", values="net_benefit", sort=False)
    # the references in the same table: treat all (the same for every model), treat none (0)
    first = at.drop_duplicates("threshold").set_index("threshold")
    wide.loc["treat all"] = first["treat_all"]
    wide.loc["treat none"] = first["treat_none"]
    wide.columns = [f"net benefit at {c:g}" for c in wide.columns]
    positive = html.escape(", ".join(r.task["positive"]))
    return [
        "<h2>Decision curves</h2>",
        _note(
            f"Net benefit of calling {positive} when the model's probability reaches a threshold "
            "probability t: true positives / n - false positives / n x t / (1 - t) (Vickers & "
            "Elkin 2006), against treating every patient as positive (treat all) and none "
            "(net benefit 0). A model is useful at t where its curve lies above both."
        ),
        wide.reset_index().to_html(index=False, border=0, classes="t", float_format="%.3f"),
        png(r.figures["decision"]),
    ]


def subgroups_section(r) -> list[str]:
    """Metrics by hospital, vendor, field strength and the configured cases-table columns."""
    if r.subgroups is None:
        return []
    best = r.subgroups[r.subgroups["model"] == best_name(r.subgroups)].drop(columns="model")
    variables = ", ".join(map(html.escape, r.config["evaluate"]["subgroups"]))
    return [
        "<h2>Subgroups</h2>",
        _note(
            f"The best ensemble's out-of-fold metrics by {variables}, with counts and 95 % "
            "intervals; a group lacking a class has no AUC. Small groups give wide intervals: "
            "read a difference only where the intervals say so. Forest plot: subgroups and, when "
            "run, each hospital held out (external)."
        ),
        table(best, r.percent),
        png(r.figures["subgroups"]),
    ]


SECTIONS = (external_section, calibration_section, decision_section, subgroups_section)
