"""Choose the slice-area threshold of a sequence read where the guide's localiser of the fold
finds the tumour, on that fold's training patients (no network runs: the guide's training job
saved their tumour probabilities)."""

from pathlib import Path

from gynmri.io.slices import listed_tables
from gynmri.localise.crossval import calibrate_carried
from gynmri.runlog import start

start(snakemake.log[0])
p, wc = snakemake.params, snakemake.wildcards
calibrate_carried(
    listed_tables(snakemake.input.wide),
    p.patients,
    wc.sequence,
    int(wc.fold),
    Path(snakemake.input.guide),
    Path(snakemake.input.guide_maps),
    Path(snakemake.output.model),
)
