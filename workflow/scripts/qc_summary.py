"""Gather the per-patient QC records into cohort, series and file tables."""

from gynmri.preprocessing import qc
from gynmri.runlog import start

log = start(snakemake.log[0])
records = qc.load_records(snakemake.input.qc)
files = qc.files_table(records)
series = qc.series_table(records)
files.to_csv(snakemake.output.files, sep="\t", index=False)
series.to_csv(snakemake.output.series, sep="\t", index=False)
cohort = qc.cohort_table(records, series, snakemake.params.sequences)
cohort.to_csv(snakemake.output.cohort, sep="\t", index=False)
log.info("files by status/reason:\n%s", files.groupby(["status", "reason"]).size().to_string())
