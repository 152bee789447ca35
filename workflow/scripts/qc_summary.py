"""Gather the per-patient QC records into cohort, series and file tables."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from gynmri import qc  # noqa: E402
from gynmri.runlog import start  # noqa: E402

log = start(snakemake.log[0])
records = qc.load_records(snakemake.input.qc)
files = qc.files_table(records)
series = qc.series_table(records)
files.to_csv(snakemake.output.files, sep="\t", index=False)
series.to_csv(snakemake.output.series, sep="\t", index=False)
qc.cohort_table(records, series, snakemake.config["sequences"]["use"]).to_csv(
    snakemake.output.cohort, sep="\t", index=False
)
log.info("files by status/reason:\n%s", files.groupby(["status", "reason"]).size().to_string())
