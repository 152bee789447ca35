"""Patient scores and metrics per sequence and sequence combination, per class and per summary."""

import pandas as pd

from gynmri.evaluation.tables import evaluation_tables
from gynmri.runlog import start

log = start(snakemake.log[0])
p, out = snakemake.params, snakemake.output
predictions = pd.concat(
    [pd.read_parquet(f) for f in snakemake.input.predictions], ignore_index=True
)
folds = pd.read_csv(snakemake.input.folds, sep="\t")
tables = evaluation_tables(predictions, folds, p.task, p.sequences, p.evaluate)
for name, table in tables.items():
    digits = "%.5f" if name == "roc" else "%.4f"
    table.to_csv(getattr(out, name), sep="\t", index=False, float_format=digits)
log.info("best ensembles:\n%s", tables["ensembles"].head(5).to_string())
