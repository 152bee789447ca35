"""Train the tumour localiser for one (sequence, fold) on that fold's training patients."""

from pathlib import Path

from gynmri.io.slices import listed_tables
from gynmri.localise.crossval import train_localiser  # imports jax only when training starts
from gynmri.training.runtime import start_jax_job

start_jax_job(snakemake.log[0], snakemake.threads, snakemake.resources.gpu_memory)
p, wc = snakemake.params, snakemake.wildcards
train_localiser(
    listed_tables(snakemake.input.wide),
    p.patients,
    wc.sequence,
    int(wc.fold),
    p.size,
    p.localiser,
    p.augment,
    Path(snakemake.output.model),
    Path(snakemake.output.history),
    Path(snakemake.output.maps),
)
