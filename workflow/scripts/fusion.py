"""Image-only vs clinical-only vs image+clinical: out-of-fold stacked models and their metrics."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.fusion import fusion_tables  # noqa: E402
from gynmri.runlog import start  # noqa: E402

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
