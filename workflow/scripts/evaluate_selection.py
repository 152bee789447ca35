"""Automatic vs annotated slice selection: slice-level detection and patient-level diagnosis."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.autoselect import selection_tables  # noqa: E402
from gynmri.runlog import start  # noqa: E402

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
    p.evaluate,
    p.fov_mm / p.size,
)
slices.to_csv(snakemake.output.slices, sep="\t", index=False, float_format="%.4f")
patients.to_csv(snakemake.output.patients, sep="\t", index=False, float_format="%.4f")
log.info("slice selection:\n%s\n%s", slices.to_string(), patients.to_string())
