"""Figures of the clinical evaluation: reliability diagram, decision curves, forest plot."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gynmri.evaluation.clinical import BEST  # noqa: E402


def _best(names) -> str:
    return next(n for n in names if str(n).startswith(BEST))


def plot_calibration(curves: pd.DataFrame, out: str | Path) -> None:
    """Reliability diagram of the best ensemble: one panel per target (the positive view, then
    each class one vs rest), binned observed frequencies (Wilson intervals) and the lowess
    curve, before and after recalibration."""
    best = curves[curves["model"] == _best(curves["model"].unique())]
    targets = list(dict.fromkeys(best["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 4.2), squeeze=False)
    colors = dict(zip(dict.fromkeys(best["recalibration"]), ["C0", "C3", "C2"], strict=False))
    for ax, target in zip(axes[0], targets, strict=True):
        ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="perfect calibration")
        for how, part in best[best["target"] == target].groupby("recalibration", sort=False):
            color = colors[how]
            smooth = part[part["kind"] == "smoothed"]
            ax.plot(smooth["predicted"], smooth["observed"], color=color, label=f"{how}: lowess")
            binned = part[part["kind"] == "binned"]
            err = np.vstack(
                [
                    binned["observed"] - binned["observed_lo"],
                    binned["observed_hi"] - binned["observed"],
                ]
            )
            ax.errorbar(
                binned["predicted"],
                binned["observed"],
                yerr=np.clip(err, 0, None),
                fmt="o",
                color=color,
                capsize=3,
                label=f"{how}: quintiles (95% CI)",
            )
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", title=target)
        ax.set_aspect("equal")
    axes[0][0].set_ylabel("observed frequency")
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.suptitle(_best(curves["model"].unique()), fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_decision(decision: pd.DataFrame, out: str | Path, max_threshold: float = 0.8) -> None:
    """Decision curves: net benefit of each model, of treating all and of treating none."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    shown = decision[decision["threshold"] <= max_threshold]
    first = shown[shown["model"] == shown["model"].iloc[0]]
    ax.plot(first["threshold"], first["treat_all"], color="grey", lw=1, label="treat all")
    ax.axhline(0, color="black", lw=1, label="treat none")
    for model, part in shown.groupby("model", sort=False):
        ax.plot(part["threshold"], part["net_benefit"], label=model)
    top = float(shown["treat_all"].max())  # treat all at the lowest threshold: ~ the prevalence
    ax.set(
        xlim=(0, max_threshold),
        ylim=(-0.05, max(0.05, top * 1.15)),
        xlabel="threshold probability",
        ylabel="net benefit",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_forest(subgroups: pd.DataFrame, external: pd.DataFrame | None, out: str | Path) -> None:
    """Forest plot of the best ensemble: SS-Avg and AUC (95% CI) for the whole cohort, each
    subgroup and (when run) each held-out hospital, with patient counts."""
    best = _best(subgroups["model"].unique())
    rows = subgroups[subgroups["model"] == best]
    labels = [
        "all patients" if r.variable == "all" else f"{r.variable}: {r.group}"
        for r in rows.itertuples()
    ]
    frame = rows.assign(label=labels)
    if external is not None and len(external):
        ext = external[(external["model"] == best) & (external["validation"] == "external")]
        frame = pd.concat(
            [frame, ext.assign(label=[f"external: {h}" for h in ext["hospital"]])],
            ignore_index=True,
        )
    y = np.arange(len(frame))[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.32 * len(frame) + 1.4), sharey=True)
    for ax, metric, name in zip(axes, ("ss_avg", "auc"), ("SS-Avg", "AUC"), strict=True):
        lo, hi = frame[f"{metric}_lo"], frame[f"{metric}_hi"]
        err = np.vstack([frame[metric] - lo, hi - frame[metric]])
        ax.errorbar(
            frame[metric],
            y,
            xerr=np.nan_to_num(np.clip(err, 0, None)),
            fmt="s",
            color="C0",
            capsize=2,
            ms=4,
        )
        overall = frame.loc[frame["label"] == "all patients", metric]
        if len(overall):
            ax.axvline(float(overall.iloc[0]), ls=":", color="grey")
        ax.set(xlim=(0, 1.02), xlabel=f"{name} (95% CI)")
    counts = [
        f"{lab}  (n={int(n)}, {int(k)} pos.)"
        for lab, n, k in zip(frame["label"], frame["n"], frame["n_positive"], strict=True)
    ]
    axes[0].set_yticks(y, counts, fontsize=7)
    fig.suptitle(best, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
