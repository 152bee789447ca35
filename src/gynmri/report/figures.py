"""The report's figures (PNG, matplotlib's Agg backend: no display needed on cluster nodes).

They only draw tables computed upstream: ROC curves with operating points, confusion matrices,
training curves, the reader-study bars.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gynmri.evaluation.metrics import BEST_CURVE  # noqa: E402
from gynmri.evaluation.readers import MODEL, PLOT_METRICS  # noqa: E402
from gynmri.evaluation.scoring import best_ensemble, ensemble_name  # noqa: E402


def plot_roc(roc: pd.DataFrame, out: str | Path, points: pd.DataFrame | None = None) -> None:
    """Write the ROC curves of every sequence and the best ensemble to a PNG.

    ``points``: rows with curve, sensitivity, specificity: the operating points at the
    configured threshold, drawn on their curves.
    """
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=110)
    for name, curve in roc.groupby("curve", sort=False):
        style = "-" if name.startswith(BEST_CURVE) else "--"
        (line,) = ax.plot(
            curve["fpr"], curve["tpr"], style, label=name, lw=2 if style == "-" else 1.3
        )
        if points is not None:
            at = points[points["curve"] == name]
            ax.plot(1 - at["specificity"], at["sensitivity"], "o", color=line.get_color(), ms=6)
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set(
        xlabel="1 - specificity",
        ylabel="sensitivity",
        xlim=(-0.01, 1),
        ylim=(0, 1.01),
        title="ROC, out-of-fold patient scores (dots: operating points)",
    )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def operating_points(sequences: pd.DataFrame, ensembles: pd.DataFrame) -> pd.DataFrame:
    """Return the pooled sensitivity/specificity of each sequence and of the best ensemble, by
    curve name (as :func:`gynmri.evaluation.metrics.evaluate_all` names the curves)."""
    pooled = sequences[sequences["fold"].astype(str) == "all"]
    seq = pooled.assign(curve=pooled["sequence"])[["curve", "sensitivity", "specificity"]]
    best = ensembles[ensembles["ensemble"] == ensemble_name(best_ensemble(ensembles))]
    ens = best.assign(curve=f"{BEST_CURVE} " + best["ensemble"])
    return pd.concat([seq, ens[["curve", "sensitivity", "specificity"]]], ignore_index=True)


def confusion_panels(
    sequences: list[str], ensembles: pd.DataFrame, n_ensembles: int = 3, fused: list[str] = ()
) -> list[str]:
    """Return the score sets whose confusion matrices are drawn: sequences, best ensembles, fused."""
    best = ensembles[ensembles["n_sequences"] > 1].head(n_ensembles)["ensemble"].tolist()
    return [*sequences, *best, *fused]


def plot_confusion(
    confusion: pd.DataFrame, classes: list[str], panels: list[str], out: str | Path
) -> None:
    """Write the patient-level K x K confusion matrices of the ``panels`` score sets to a PNG.

    ``confusion``: long table (scores, true, predicted, n) as ``gynmri.evaluation.tables.class_tables``
    writes it; rows are true classes, columns predicted ones, in task class order.
    """
    k = len(classes)
    size = 2.2 + 0.45 * k
    ncols = min(len(panels), 4)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, (size + 0.4) * nrows), dpi=100, squeeze=False
    )
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
                ax.text(
                    j,
                    i,
                    matrix[i, j],
                    ha="center",
                    va="center",
                    fontsize=11,
                    color="white" if dark else "black",
                )
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
    fig, axes = plt.subplots(
        2, len(sequences), figsize=(3.6 * len(sequences), 5.5), dpi=100, squeeze=False, sharex=True
    )
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


def plot_reader_bars(
    table: pd.DataFrame, out_png: str | Path, roles: list[str] | None = None
) -> None:
    """Write a grouped bar chart like the study's figure 2 from :func:`reader_table`'s output.

    Groups: accuracy, SS-Avg, sensitivity, specificity (with more than two classes: top-1
    accuracy, macro sensitivity, macro SS-Avg and each class's sensitivity; see
    :func:`gynmri.evaluation.readers.plot_metrics`); bars: each role unaided, then each role
    assisted in reverse order (specialists unaided, residents unaided, residents assisted,
    specialists assisted for roles [specialist, resident]), then the model. Whiskers: Wilson 95 %
    intervals (none for SS-Avg and the macro means).
    """
    from gynmri.evaluation.readers import plot_metrics

    metrics = PLOT_METRICS if "top1_accuracy" not in table else plot_metrics(table)
    role_rows = table[table["level"] == "role"]
    roles = roles or list(dict.fromkeys(role_rows["role"]))
    order = [(r, "unaided") for r in roles] + [(r, "assisted") for r in reversed(roles)]
    bars = []
    for role, session in order:
        hit = role_rows[(role_rows["role"] == role) & (role_rows["session"] == session)]
        if len(hit):
            bars.append((f"{role}, {session}", hit.iloc[0]))
    model = table[table["level"] == MODEL]
    if len(model):
        bars.append(("model", model.iloc[0]))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    width = 0.8 / max(len(bars), 1)
    x = np.arange(len(metrics))
    for j, (label, row) in enumerate(bars):
        values = np.array([row[m] for m, _ in metrics], float) * 100
        lo = np.array([row.get(f"{m}_lo", np.nan) for m, _ in metrics], float) * 100
        hi = np.array([row.get(f"{m}_hi", np.nan) for m, _ in metrics], float) * 100
        # NaN (SS-Avg): no whisker; clip: at a rate of 0 or 1 rounding can put the bound past it
        err = np.clip(np.vstack([values - lo, hi - values]), 0, None)
        pos = x - 0.4 + width * (j + 0.5)
        ax.bar(
            pos,
            values,
            width,
            label=label,
            yerr=err,
            capsize=2,
            color="black" if label == "model" else None,
        )
        for px, v in zip(pos, values, strict=True):
            if np.isfinite(v):
                ax.text(px, 1, f"{v:.0f}", ha="center", va="bottom", fontsize=6, color="white")
    small = {"fontsize": 8} if len(metrics) > len(PLOT_METRICS) else {}  # more groups: narrower
    ax.set_xticks(x, [name for _, name in metrics], **small)
    ax.set(ylabel="%", ylim=(0, 105), title="Readers unaided and AI-assisted vs the model")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)


def plot_ensembles_by_size(ensembles: pd.DataFrame, rank_by: str, out: str | Path) -> None:
    """Write the ranking metric of every ensemble against its number of sequences to a PNG:
    each ensemble a dot (jittered), the best of each size joined by a line, the best ensemble
    circled. Readable at 15 sequences (32,767 dots) as at 3."""
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=110)
    size = ensembles["n_sequences"].to_numpy()
    value = ensembles[rank_by].to_numpy(float)
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(size))
    alpha = 0.6 if len(size) < 200 else 0.08
    ax.scatter(size + jitter, value, s=6, alpha=alpha, color="tab:blue", lw=0)
    best = ensembles.loc[ensembles.groupby("n_sequences")[rank_by].idxmax().dropna()]
    ax.plot(best["n_sequences"], best[rank_by], "-o", color="tab:red", ms=4, label="best of size")
    top = ensembles.iloc[0]
    ax.plot(top["n_sequences"], top[rank_by], "o", ms=12, mfc="none", mec="black", mew=1.5,
            label=f"best: {top['ensemble']}")  # fmt: skip
    ax.set(
        xlabel="sequences in the ensemble",
        ylabel=rank_by,
        xticks=sorted(set(size)),
        title=f"{len(ensembles)} ensembles by size (out-of-fold, patient level)",
    )
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def localiser_sample(wide: pd.DataFrame, classes: list[str], per_class: int = 1) -> list[str]:
    """Return up to ``per_class`` patients per class (in class order) with an annotated tumour,
    those annotated in the most sequences first, then by key: the rows of the localiser figure."""
    annotated = wide[wide["annotated"]]
    count = annotated.groupby("patient")["sequence"].nunique()
    label = annotated.groupby("patient")["label"].first()
    chosen = []
    for name in classes:
        keys = sorted(count[label == name].index, key=lambda key: (-count[key], key))
        chosen += keys[:per_class]
    return chosen


def plot_localiser_sample(
    wide: pd.DataFrame,
    masks: dict[str, dict[str, np.ndarray]],
    selection: pd.DataFrame,
    sequences: list[str],
    classes: list[str],
    out: str | Path,
    per_class: int = 1,
) -> None:
    """Write the localiser's kept tumour (green) against the annotation (red) on held-out
    patients: rows = patients (:func:`localiser_sample`), columns = sequences; each panel is the
    patient's wide slice with the largest annotated tumour, titled with the patient's Dice and
    the slices selected / annotated. ``masks``: sequence -> patient -> (S, W, W) kept tumour, in
    slice order; ``selection``: the predict_auto selection rows of those patients."""
    from gynmri.io.slices import to_images, to_masks

    patients = localiser_sample(wide, classes, per_class)
    if not patients:
        raise ValueError("no held-out patient has an annotated tumour to show")
    fig, axes = plt.subplots(
        len(patients), len(sequences), figsize=(2.6 * len(sequences), 3.1 * len(patients)),
        dpi=100, squeeze=False,
    )  # fmt: skip
    for i, patient in enumerate(patients):
        for j, seq in enumerate(sequences):
            ax = axes[i, j]
            part = wide[(wide["patient"] == patient) & (wide["sequence"] == seq)]
            part = part.sort_values("slice_index")
            ax.set_axis_off()
            if not part["annotated"].any() or patient not in masks[seq]:
                ax.set_title(f"{seq}: no annotated tumour", fontsize=8)
                continue
            true, image = to_masks(part), to_images(part)
            k = int(np.argmax(true.sum(axis=(1, 2))))
            lo, hi = np.percentile(image[k], (1, 99))
            ax.imshow(image[k], cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6))
            ax.contour(true[k].astype(float), levels=[0.5], colors="red", linewidths=1)
            kept = masks[seq][patient][k]
            if kept.any():
                ax.contour(kept.astype(float), levels=[0.5], colors="lime", linewidths=1)
            sel = selection[(selection["patient"] == patient) & (selection["sequence"] == seq)]
            title = (
                f"{seq}, {part['label'].iloc[0]}\nDice {sel['dice'].iloc[0]:.2f}, slices "
                f"{int((sel['selected'] & sel['annotated']).sum())}/{int(sel['annotated'].sum())}"
                f" (+{int((sel['selected'] & ~sel['annotated']).sum())})"
            )
            ax.set_title(title, fontsize=8)
    fig.suptitle("red: annotation, green: localiser (largest 3-D component)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
