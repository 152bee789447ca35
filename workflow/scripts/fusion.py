"""Image-only vs clinical-only vs image+clinical: out-of-fold stacked models and their metrics."""

import pandas as pd

from gynmri.evaluation.fusion import fusion_tables
from gynmri.runlog import start

log = start(snakemake.log[0])
p, out = snakemake.params, snakemake.output
predictions = pd.concat(
    [pd.read_parquet(f) for f in snakemake.input.predictions], ignore_index=True
)
tables = fusion_tables(
    predictions,
    pd.read_csv(snakemake.input.folds, sep="\t"),
    pd.DataFrame(p.covariates),
    p.task,
    p.sequences,
    p.evaluate,
    p.fusion,
)
for name, table in tables.items():
    table.to_csv(getattr(out, name), sep="\t", index=False, float_format="%.4f")
log.info("fusion:\n%s", tables["metrics"].to_string())
