"""The self-contained HTML report."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.report import render_html  # noqa: E402
from gynmri.runlog import start  # noqa: E402

log = start(snakemake.log[0])
tsv = {
    k: pd.read_csv(getattr(snakemake.input, k), sep="\t")
    for k in ("cohort", "files", "sequences", "ensembles")
}
page = render_html(
    task=snakemake.params.task,
    config=snakemake.params.config,
    roc_png=snakemake.input.roc_png,
    training_png=snakemake.input.training_png,
    **tsv,
)
Path(snakemake.output.html).write_text(page)
log.info("report: %d bytes", len(page))
