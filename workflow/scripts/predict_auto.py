"""Held-out patients of one (sequence, fold): slices selected by the localiser, then classified."""

from pathlib import Path

from gynmri.io.slices import listed_tables
from gynmri.localise.crossval import predict_auto  # imports jax only when predicting
from gynmri.training.runtime import start_jax_job

start_jax_job(snakemake.log[0], snakemake.threads, snakemake.resources.gpu_memory)
p, wc = snakemake.params, snakemake.wildcards
predict_auto(
    Path(snakemake.input.detector),
    Path(snakemake.input.model),
    listed_tables(snakemake.input.wide),
    p.patients,
    wc.sequence,
    int(wc.fold),
    p.classes,
    p.mm_per_px,
    Path(snakemake.output.predictions),
    Path(snakemake.output.selection),
    Path(snakemake.output.masks),
    guide_dir=Path(snakemake.input.guide) if snakemake.input.get("guide") else None,
    out_perfect=Path(snakemake.output.perfect),
    tta=p.tta,
)
