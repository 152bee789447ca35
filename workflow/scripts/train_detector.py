"""Train the tumour-slice detector for one (sequence, fold) on that fold's training patients."""

from pathlib import Path

from gynmri.detection.crossval import train_detector  # imports jax only when training starts
from gynmri.io.slices import listed_tables
from gynmri.training.runtime import start_jax_job

start_jax_job(snakemake.log[0], snakemake.threads, snakemake.resources.gpu_memory)
p, wc = snakemake.params, snakemake.wildcards
train_detector(
    listed_tables(snakemake.input.wide),
    p.patients,
    wc.sequence,
    int(wc.fold),
    p.size,
    p.model,
    p.train,
    p.views,
    Path(snakemake.output.model),
    Path(snakemake.output.history),
    checkpoint_dir=Path("results/checkpoints/detectors") / wc.sequence / f"fold{wc.fold}",
)
