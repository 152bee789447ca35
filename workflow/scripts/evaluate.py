"""Patient scores and metrics per sequence and per sequence combination."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.evaluate import evaluate_all  # noqa: E402
from gynmri.runlog import start  # noqa: E402

log = start(snakemake.log[0])
predictions = pd.concat(
    [pd.read_parquet(p) for p in snakemake.input.predictions], ignore_index=True
)
per_sequence, ensembles, roc = evaluate_all(
    predictions,
    pd.read_csv(snakemake.input.folds, sep="\t"),
    snakemake.params.classes,
    snakemake.params.positive,
    snakemake.params.sequences,
    snakemake.params.evaluate,
    n_boot=snakemake.params.evaluate.get("bootstrap", 0),
    seed=snakemake.params.evaluate.get("seed", 0),
    threshold_rule=snakemake.params.evaluate.get("threshold_rule"),
)
per_sequence.to_csv(snakemake.output.sequences, sep="\t", index=False, float_format="%.4f")
ensembles.to_csv(snakemake.output.ensembles, sep="\t", index=False, float_format="%.4f")
roc.to_csv(snakemake.output.roc, sep="\t", index=False, float_format="%.5f")
log.info("best ensembles:\n%s", ensembles.head(5).to_string())
