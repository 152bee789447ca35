"""Train MobileNetV2 for one (sequence, fold) on that fold's training patients."""

from pathlib import Path

from gynmri.io.slices import listed_tables
from gynmri.training.crossval import train_fold  # imports jax only when training starts
from gynmri.training.runtime import start_jax_job

start_jax_job(snakemake.log[0], snakemake.threads, snakemake.resources.gpu_memory)
wc, p = snakemake.wildcards, snakemake.params
train_fold(
    listed_tables(snakemake.input.slices),
    p.patients,
    wc.sequence,
    int(wc.fold),
    p.classes,
    p.model,
    p.train,
    Path(snakemake.output.model),
    Path(snakemake.output.history),
    # Outside the outputs, so that Snakemake keeps it when a killed job is rerun: it resumes.
    checkpoint_dir=Path("results/checkpoints") / wc.sequence / f"fold{wc.fold}",
)
