"""The self-contained HTML report."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.report import render_html  # noqa: E402
from gynmri.runlog import start  # noqa: E402

log = start(snakemake.log[0])
inp = snakemake.input


def table(name):
    """Return the TSV input ``name`` as a table, or None when the rule did not get it."""
    return pd.read_csv(getattr(inp, name), sep="\t") if hasattr(inp, name) else None


fusion_parts = ("metrics", "coefficients", "classes", "summaries")
fusion = {part: table(f"fusion_{part}") for part in fusion_parts if hasattr(inp, f"fusion_{part}")}
page = render_html(
    task=snakemake.params.task,
    config=snakemake.params.config,
    cohort=table("cohort"),
    files=table("files"),
    sequences=table("sequences"),
    ensembles=table("ensembles"),
    classes=table("classes"),
    summaries=table("summaries"),
    roc_png=inp.roc_png,
    training_png=inp.training_png,
    confusion_png=inp.confusion_png,
    readers=table("readers"),
    reader_tests=table("reader_tests"),
    readers_png=getattr(inp, "readers_png", None),
    fusion=fusion or None,
    selection_slices=table("selection_slices"),
    selection_patients=table("selection_patients"),
    gradcam_png=getattr(inp, "gradcam_png", None),
)
Path(snakemake.output.html).write_text(page)
log.info("report: %d bytes", len(page))
