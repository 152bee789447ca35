"""Predict the held-out patients of one (sequence, fold) with its trained model."""

from pathlib import Path

from gynmri.io.slices import listed_tables
from gynmri.training.crossval import predict_fold  # imports jax only when predicting
from gynmri.training.runtime import start_jax_job

start_jax_job(snakemake.log[0], snakemake.threads, snakemake.resources.gpu_memory)
wc, p = snakemake.wildcards, snakemake.params
predict_fold(
    Path(snakemake.input.model),
    listed_tables(snakemake.input.slices),
    p.patients,
    wc.sequence,
    int(wc.fold),
    p.classes,
    Path(snakemake.output.predictions),
    tta=p.tta,
)
