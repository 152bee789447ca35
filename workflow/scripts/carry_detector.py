"""Choose the slice-area threshold of a sequence read where the guide's localiser of the fold
finds the tumour, on that fold's training patients (no network of its own)."""

from pathlib import Path

from gynmri.io.slices import listed_tables
from gynmri.localise.crossval import calibrate_carried  # imports jax only when predicting
from gynmri.training.runtime import start_jax_job

start_jax_job(snakemake.log[0], snakemake.threads, snakemake.resources.gpu_memory)
p, wc = snakemake.params, snakemake.wildcards
calibrate_carried(
    listed_tables(snakemake.input.wide),
    p.patients,
    wc.sequence,
    int(wc.fold),
    Path(snakemake.input.guide),
    Path(snakemake.output.model),
)
