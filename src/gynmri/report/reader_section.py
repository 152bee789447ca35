"""The report's reader-study section (tables of :mod:`gynmri.evaluation.readers`)."""

from __future__ import annotations

import html

from gynmri.report.page import png, table


def readers_section(r) -> list[str]:
    """The reader study: readers, roles and the model; per class with 3+ classes; paired tests."""
    if r.readers is None:
        return []
    simulated = " <b>The readers table is SIMULATED</b> (synthetic cohort)." if r.synthetic else ""
    model = html.escape(str(r.readers["model"].iloc[0]))
    summary = r.readers[r.readers["level"] != "reader"].drop(columns=["model"])
    tests = r.reader_tests.to_html(
        index=False, border=0, classes="t", na_rep="", float_format="%.3g"
    )
    # several classes: one-vs-rest sensitivity_<class>/specificity_<class> (+ _lo/_hi) columns
    per_class = [
        c
        for c in summary.columns
        if c.startswith(("sensitivity_", "specificity_")) and f"{c}_lo" in summary
    ]
    in_class = {f"{c}{e}" for c in per_class for e in ("", "_lo", "_hi")}
    percent = [*r.percent, "macro_sensitivity", "macro_specificity", *per_class]
    shown = [c for c in summary.columns if c not in ("tp", "fp", "tn", "fn", *in_class)]
    class_cols = [c for c in summary.columns if c in in_class]
    multi = (
        " Each call names one class (the model's: its most probable class); accuracy, "
        "sensitivity, specificity and SS-Avg are those of the positive classes ("
        + html.escape(", ".join(r.task["positive"]))
        + ") vs the rest, top-1 accuracy and the macro means (macro sensitivity = balanced "
        "accuracy) are over the classes. A role's call is the majority vote of its readers, a "
        "tie going to the more severe class."
        if per_class
        else ""
    )
    ids = ["level", "role", "reader", "session"]
    return [
        "<h2>Reader study</h2>",
        f'<p class="note">Readers unaided and AI-assisted, and the model shown to them ({model}, '
        f"the best ensemble) on the same patients.{simulated} Role rows pool the calls of the "
        f"role's readers.{multi}</p>",
        table(summary[shown], percent),
        *(
            ["<h3>Readers per class (one vs rest)</h3>", table(summary[ids + class_cols], percent)]
            if per_class
            else []
        ),
        png(r.figures["readers"]),
        "<h3>Paired tests (McNemar; Stuart-Maxwell and Bowker on the class calls)</h3>"
        if per_class
        else "<h3>Paired tests (McNemar)</h3>",
        tests,
    ]
