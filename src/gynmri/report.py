"""Figures and the self-contained HTML report; they only format tables computed upstream."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import re
import subprocess
from importlib import metadata
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

METRIC_COLUMNS = ["n", "accuracy", "sensitivity", "specificity", "ss_avg", "auc"]
AUC_COLUMNS = ("auc", "macro_auc")  # shown as 0.xxx, the other metrics as percentages
VERSIONED = [
    "gynmri",
    "snakemake",
    "pydicom",
    "SimpleITK",
    "jax",
    "flax",
    "optax",
    "pandas",
    "numpy",
]


def plot_roc(roc: pd.DataFrame, out: str | Path, points: pd.DataFrame | None = None) -> None:
    """Write the ROC curves of every sequence and the best ensemble to a PNG.

    ``points``: rows with curve, sensitivity, specificity: the operating points at the
    configured threshold, drawn on their curves.
    """
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=110)
    for name, curve in roc.groupby("curve", sort=False):
        style = "-" if name.startswith("ensemble") else "--"
        (line,) = ax.plot(
            curve["fpr"], curve["tpr"], style, label=name, lw=2 if style == "-" else 1.3
        )
        if points is not None:
            at = points[points["curve"] == name]
            ax.plot(1 - at["specificity"], at["sensitivity"], "o", color=line.get_color(), ms=6)
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(-0.01, 1), ylim=(0, 1.01),
           title="ROC, out-of-fold patient scores (dots: operating points)")  # fmt: skip
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def operating_points(sequences: pd.DataFrame, ensembles: pd.DataFrame) -> pd.DataFrame:
    """Return the pooled sensitivity/specificity of each sequence and ensemble, by curve name."""
    pooled = sequences[sequences["fold"].astype(str) == "all"]
    seq = pooled.assign(curve=pooled["sequence"])[["curve", "sensitivity", "specificity"]]
    ens = ensembles.assign(curve="ensemble " + ensembles["ensemble"])[
        ["curve", "sensitivity", "specificity"]
    ]
    return pd.concat([seq, ens], ignore_index=True)


def confusion_panels(sequences: list[str], ensembles: pd.DataFrame, n_ensembles: int = 3,
                     fused: list[str] = ()) -> list[str]:  # fmt: skip
    """Return the score sets whose confusion matrices are drawn: sequences, best ensembles, fused."""
    best = ensembles[ensembles["n_sequences"] > 1].head(n_ensembles)["ensemble"].tolist()
    return [*sequences, *best, *fused]


def plot_confusion(confusion: pd.DataFrame, classes: list[str], panels: list[str],
                   out: str | Path) -> None:  # fmt: skip
    """Write the patient-level K x K confusion matrices of the ``panels`` score sets to a PNG.

    ``confusion``: long table (scores, true, predicted, n) as ``gynmri.evaluate.class_tables``
    writes it; rows are true classes, columns predicted ones, in task class order.
    """
    k = len(classes)
    size = 2.2 + 0.45 * k
    ncols = min(len(panels), 4)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, (size + 0.4) * nrows), dpi=100,
                             squeeze=False)  # fmt: skip
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    for ax, name in zip(axes.ravel(), panels, strict=False):
        part = confusion[confusion["scores"] == name]
        matrix = (
            part.pivot_table(index="true", columns="predicted", values="n", aggfunc="sum")
            .reindex(index=classes, columns=classes)
            .fillna(0)
            .to_numpy(int)
        )
        ax.imshow(matrix, cmap="Blues", vmin=0)
        for i in range(k):
            for j in range(k):
                dark = matrix[i, j] > matrix.max() * 0.6
                ax.text(j, i, matrix[i, j], ha="center", va="center", fontsize=11,
                        color="white" if dark else "black")  # fmt: skip
        ax.set_xticks(range(k), classes, fontsize=7, rotation=30 if k > 2 else 0)
        ax.set_yticks(range(k), classes, fontsize=7)
        ax.set_xlabel("predicted (most probable)", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def read_histories(paths: list[str]) -> pd.DataFrame:
    """Return the training histories with sequence and fold parsed from their paths."""
    frames = []
    for p in paths:
        match = re.search(r"models/([^/]+)/fold(\d+)/history\.tsv$", str(p))
        frame = pd.read_csv(p, sep="\t")
        frame["sequence"], frame["fold"] = match.group(1), int(match.group(2))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def plot_training(histories: pd.DataFrame, out: str | Path) -> None:
    """Write training loss and validation balanced accuracy per epoch, one panel per sequence."""
    sequences = list(dict.fromkeys(histories["sequence"]))
    fig, axes = plt.subplots(2, len(sequences), figsize=(3.6 * len(sequences), 5.5), dpi=100,
                             squeeze=False, sharex=True)  # fmt: skip
    for j, seq in enumerate(sequences):
        for fold, h in histories[histories["sequence"] == seq].groupby("fold"):
            axes[0, j].plot(h["epoch"], h["train_loss"], marker=".", label=f"fold {fold}")
            if "val_balanced_accuracy" in h and h["val_balanced_accuracy"].notna().any():
                axes[1, j].plot(
                    h["epoch"], h["val_balanced_accuracy"], marker=".", label=f"fold {fold}"
                )
        axes[0, j].set_title(seq)
        axes[0, j].set_ylabel("training loss")
        axes[1, j].set_ylabel("validation balanced accuracy")
        axes[1, j].set_xlabel("epoch")
        axes[1, j].set_ylim(0, 1)
        axes[0, j].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def _png(path: str | Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(Path(path).stem)}" src="data:image/png;base64,{data}">'


def _fmt(value, percent: bool) -> str:
    if pd.isna(value):
        return ""
    return f"{100 * value:.1f}" if percent else f"{value:.3f}"


def _table(df: pd.DataFrame, percent: list[str] = ()) -> str:
    """Return an HTML table; metrics with ``_lo``/``_hi`` columns are shown as 'value (lo-hi)'."""
    df = df.copy()
    for col in [*percent, *AUC_COLUMNS]:
        if col not in df:
            continue
        is_pct = col not in AUC_COLUMNS
        lo, hi = f"{col}_lo", f"{col}_hi"
        text = df[col].map(lambda v, p=is_pct: _fmt(v, p) + (" %" if p and pd.notna(v) else ""))
        if lo in df and hi in df:
            ci = [f" ({_fmt(a, is_pct)}-{_fmt(b, is_pct)})" if pd.notna(a) and pd.notna(b) else ""
                  for a, b in zip(df[lo], df[hi], strict=True)]  # fmt: skip
            text = text + pd.Series(ci, index=df.index)
            df = df.drop(columns=[lo, hi])
        df[col] = text
    return df.to_html(index=False, border=0, classes="t", na_rep="")


def provenance(config: dict) -> dict:
    """Return config hash, package versions, git revision and date for the report footer."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10, cwd=Path(__file__).parent).stdout.strip() or "unknown"  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        rev = "unknown"
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "config_sha256": hashlib.sha256(blob).hexdigest()[:16],
        "git": rev,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": versions,
    }


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table.t{border-collapse:collapse;font-size:.85em;margin:.5em 0}
table.t th,table.t td{padding:.25em .6em;border-bottom:1px solid #e3e3e3;text-align:right}
table.t th{background:#f4f4f4}img{max-width:100%}.note{color:#555;font-size:.9em}
footer{margin-top:3em;font-size:.8em;color:#666;border-top:1px solid #ccc;padding-top:.5em}
"""


def render_html(*, task: dict, config: dict, cohort: pd.DataFrame, files: pd.DataFrame,
                sequences: pd.DataFrame, ensembles: pd.DataFrame, roc_png: str, training_png: str,
                confusion_png: str, classes: pd.DataFrame | None = None,
                summaries: pd.DataFrame | None = None, readers: pd.DataFrame | None = None,
                reader_tests: pd.DataFrame | None = None, readers_png: str | None = None,
                fusion: dict[str, pd.DataFrame] | None = None,
                selection_slices: pd.DataFrame | None = None,
                selection_patients: pd.DataFrame | None = None,
                gradcam_png: str | None = None) -> str:  # fmt: skip
    """Return the report as one self-contained HTML page (figures embedded).

    ``classes``/``summaries``: the per-class and binary-summary tables of the evaluation;
    ``fusion``: the fusion tables by name (metrics, coefficients, classes, summaries);
    ``selection_*``: automatic vs annotated slice selection; ``gradcam_png``: sample maps.
    """
    prov = provenance(config)
    multiclass = len(task["classes"]) > 2
    pooled = sequences[sequences["fold"].astype(str) == "all"].drop(columns="fold")
    folds = sequences[sequences["fold"].astype(str) != "all"]
    excluded = (
        files[files["status"] != "used"].groupby("reason").size().rename("files").reset_index()
        .sort_values("files", ascending=False)
    )  # fmt: skip
    pct = ["accuracy", "sensitivity", "specificity", "ss_avg", "ppv", "npv"]
    macro = ["top1_accuracy", "macro_ss_avg"] if multiclass else []
    pct += macro
    shown = ["n", "n_positive", *pct, "auc", *(["macro_auc"] if multiclass else [])]

    def keep(df: pd.DataFrame, first: list[str]) -> pd.DataFrame:
        """Return the identifying columns ``first`` and the metrics of ``df``."""
        ci = tuple(f"{c}{e}" for c in shown for e in ("_lo", "_hi"))
        return df[[c for c in df.columns if c in first or c in shown or c in ci]]

    positive = ", ".join(task["positive"])
    synthetic = "synthetic" in config["cohort"]
    ecfg = config["evaluate"]
    threshold = (f"a threshold per test fold chosen by '{ecfg['threshold_rule']}' on the other folds"
                 if ecfg.get("threshold_rule") else f"threshold {ecfg['threshold']} on the positive probability")  # fmt: skip
    ci_note = (f" Intervals: 95 % Wilson for proportions, patient-level bootstrap ({ecfg['bootstrap']} resamples) "
               "for SS-Avg and AUC." if ecfg.get("bootstrap") else "")  # fmt: skip
    macro_note = (
        " With several classes the predicted class is the most probable one; top-1 accuracy, macro "
        "SS-Avg and macro AUC average the one-vs-rest figures over the classes."
        if multiclass else ""
    )  # fmt: skip
    best = ensembles[ensembles["n_sequences"] > 1]["ensemble"].head(1).tolist()
    focus = [*pooled["sequence"], *best]  # score sets detailed per class and per summary
    parts = [
        f"<h1>gynmri report: {html.escape(task['name'])} ({' / '.join(map(html.escape, task['classes']))})</h1>",
        f'<p class="note">Positive class: {html.escape(positive)}. Metrics are out-of-fold, at patient '
        f"level (slice probabilities aggregated by {ecfg['aggregate']}), {threshold}; SS-Avg is the mean "
        f"of sensitivity and specificity. {config['folds']['k']} patient-level folds.{ci_note}{macro_note}"
        + (
            " <b>Cohort: synthetic</b> (generated by the workflow; no real patient)."
            if synthetic
            else ""
        )
        + "</p>",
        "<h2>Cohort</h2>",
        _table(cohort),
        f"<p>Input files: {len(files)}; used {int((files['status'] == 'used').sum())}; excluded:</p>",
        _table(excluded),
        "<h2>Per sequence</h2>",
        _table(keep(pooled, ["sequence"]), pct),
        "<details><summary>Per fold</summary>"
        + _table(keep(folds, ["sequence", "fold"]), pct)
        + "</details>",
        f"<h2>Ensembles over sequences (best {html.escape(ecfg.get('rank_by', 'ss_avg'))} first)</h2>",
        _table(keep(ensembles.head(10), ["ensemble", "patients_missing_a_sequence"]), pct),
    ]
    fused = fusion or {}
    if multiclass and classes is not None:
        per_class = pd.concat([classes, fused.get("classes", pd.DataFrame())], ignore_index=True)
        per_class = per_class[per_class["scores"].isin(focus) | (per_class["kind"] == "fusion")]
        cols = ["scores", "kind", "class", "n", "sensitivity", "specificity", "ss_avg", "auc",
                "ss_avg_lo", "ss_avg_hi", "auc_lo", "auc_hi"]  # fmt: skip
        parts += [
            "<h2>Per class (one vs rest)</h2>",
            '<p class="note">Sensitivity: share of the class called that class; specificity: share '
            "of the other patients not called it. 'macro' rows average over the classes.</p>",
            _table(per_class[[c for c in cols if c in per_class]],
                   ["sensitivity", "specificity", "ss_avg"]),
        ]  # fmt: skip
    if summaries is not None and (multiclass or summaries["summary"].nunique() > 1):
        both = pd.concat([summaries, fused.get("summaries", pd.DataFrame())], ignore_index=True)
        both = both[both["scores"].isin(focus) | (both["kind"] == "fusion")]
        cols = ["scores", "kind", "summary", "positive", "n", "n_positive", *pct[:4], "auc"]
        cols += [f"{c}{e}" for c in [*pct[:4], "auc"] for e in ("_lo", "_hi")]
        parts += [
            "<h2>Binary summaries</h2>",
            '<p class="note">Each summary calls a patient positive when the summed probability of '
            "its positive classes reaches the threshold.</p>",
            _table(both[[c for c in cols if c in both]], pct[:4]),
        ]
    if fusion:
        info = fusion["metrics"]
        covariates = ", ".join(config["fusion"]["covariates"])
        parts += [
            "<h2>Clinical data beside the images</h2>",
            f'<p class="note">Image-only (the ensemble as is), clinical-only and image+clinical '
            f"models on the same patients. The two stacked models are logistic regressions fitted, "
            f"for each test fold, on the other folds' out-of-fold image scores and covariates only "
            f"({html.escape(covariates)}; missing values imputed from the training patients)."
            + (" <b>The covariates are SIMULATED</b> (synthetic cohort)." if synthetic else "")
            + "</p>",
            _table(keep(info, ["model", "features", "imputed_cells"]), pct),
            "<details><summary>Coefficients of the image+clinical model fitted on every patient "
            "(to read, not to evaluate)</summary>"
            + fusion["coefficients"].to_html(
                index=False, border=0, classes="t", float_format="%.3f"
            )
            + "</details>",
        ]
    if selection_slices is not None and selection_patients is not None:
        side = selection_patients.copy()
        metric_cols = [c for c in ["n", *pct[:4], "auc", *(["macro_auc"] if multiclass else [])]
                       if c in side]  # fmt: skip
        wide = side.pivot(index="scores", columns="selection", values=metric_cols)
        wide.columns = [f"{m} ({sel})" for m, sel in wide.columns]
        order = [c for m in metric_cols for c in (f"{m} (annotated)", f"{m} (automatic)")]
        wide = wide.reindex(columns=order).reset_index()
        for col in wide.columns[1:]:
            is_auc = col.split(" ")[0] in AUC_COLUMNS
            if col.startswith("n "):
                wide[col] = wide[col].astype("Int64")
            else:
                wide[col] = wide[col].map(lambda v, a=is_auc: _fmt(v, not a))
        parts += [
            "<h2>Automatic vs annotated slice selection</h2>",
            '<p class="note">A tumour-slice detector (same network family, trained per sequence '
            "and fold on the training patients' annotated slices) scans wide, volume-centred "
            "slices; the slices it selects are cropped around the tumour centre it finds and "
            "classified. Slice level: its selection of the held-out patients' slices against the "
            "annotated ones. Patient level: the same models with annotated vs automatic slices.</p>",
            _table(selection_slices.round({"centre_error_mm_median": 1}),
                   ["sensitivity", "specificity", "jaccard", "patients_hit",
                    "jaccard_per_patient"]),
            wide.to_html(index=False, border=0, classes="t", na_rep=""),
        ]  # fmt: skip
    if gradcam_png:
        parts += [
            "<h2>Where the models look (Grad-CAM)</h2>",
            '<p class="note">Class-activation maps (Grad-CAM, last convolutional block) of the '
            "predicted class on held-out slices of a sample of patients.</p>",
            _png(gradcam_png),
        ]
    parts += [
        "<h2>ROC curves</h2>",
        f'<p class="note">Positive: {html.escape(positive)} vs the rest.</p>' if multiclass else "",
        _png(roc_png),
        "<h2>Confusion matrices</h2>",
        _png(confusion_png),
    ]
    if readers is not None:
        simulated = (
            " <b>The readers table is SIMULATED</b> (synthetic cohort)." if synthetic else ""
        )
        model = html.escape(str(readers["model"].iloc[0])) if "model" in readers else "the model"
        summary = readers[readers["level"] != "reader"].drop(columns=["model"], errors="ignore")
        parts += [
            "<h2>Reader study</h2>",
            f'<p class="note">Readers unaided and AI-assisted, and the model shown to them ({model}) '
            f"on the same patients.{simulated} Role rows pool the calls of the role's readers.</p>",
            _table(summary[[c for c in summary.columns if c not in ("tp", "fp", "tn", "fn")]], pct),
            _png(readers_png) if readers_png else "",
            "<h3>Paired tests (McNemar)</h3>",
            reader_tests.to_html(index=False, border=0, classes="t", na_rep="", float_format="%.3g")
            if reader_tests is not None else "",
        ]  # fmt: skip
    parts += [
        "<h2>Training curves</h2>",
        _png(training_png),
        "<footer>"
        + f"config sha256 {prov['config_sha256']} &middot; git {html.escape(prov['git'])} &middot; "
        + f"{prov['date']}<br>"
        + ", ".join(f"{k} {html.escape(v)}" for k, v in prov["versions"].items())
        + "</footer>",
    ]
    body = "\n".join(parts)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>gynmri report: {html.escape(task['name'])}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>"
    )
