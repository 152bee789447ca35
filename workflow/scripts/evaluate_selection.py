"""Automatic vs annotated slice selection: slice-level detection and patient-level diagnosis."""

import pandas as pd

from gynmri.evaluation.selection import selection_tables
from gynmri.runlog import start

log = start(snakemake.log[0])
p, inp = snakemake.params, snakemake.input


def concat(paths):
    return pd.concat([pd.read_parquet(f) for f in paths], ignore_index=True)


slices, patients = selection_tables(
    concat(inp.auto),
    concat(inp.annotated),
    concat(inp.selection),
    pd.read_csv(inp.ensembles, sep="\t"),
    p.task,
    p.sequences,
    p.scoring,
    p.mm_per_px,
    perfect=concat(inp.perfect),
)
slices.to_csv(snakemake.output.slices, sep="\t", index=False, float_format="%.4f")
patients.to_csv(snakemake.output.patients, sep="\t", index=False, float_format="%.4f")
log.info("slice selection:\n%s\n%s", slices.to_string(), patients.to_string())
