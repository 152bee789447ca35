"""Patient scores and metrics per sequence and sequence combination, per class and per summary."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.evaluate import class_tables, evaluate_all, score_sets, task_summaries  # noqa: E402
from gynmri.runlog import start  # noqa: E402

log = start(snakemake.log[0])
p, out = snakemake.params, snakemake.output
cfg = p.evaluate
predictions = pd.concat(
    [pd.read_parquet(f) for f in snakemake.input.predictions], ignore_index=True
)
opts = {"n_boot": cfg.get("bootstrap", 0), "seed": cfg.get("seed", 0)}
per_sequence, ensembles, roc = evaluate_all(
    predictions,
    pd.read_csv(snakemake.input.folds, sep="\t"),
    p.task["classes"],
    p.task["positive"],
    p.sequences,
    cfg,
    threshold_rule=cfg.get("threshold_rule"),
    **opts,
)
sets = score_sets(predictions, p.task["classes"], p.sequences, cfg)
kinds = {name: "sequence" if name in p.sequences else "ensemble" for name in sets}
tables = class_tables(
    sets, p.task["classes"], task_summaries(p.task), cfg["threshold"], kinds=kinds, **opts
)
for name, table in [("sequences", per_sequence), ("ensembles", ensembles), *tables.items()]:
    table.to_csv(getattr(out, name), sep="\t", index=False, float_format="%.4f")
roc.to_csv(out.roc, sep="\t", index=False, float_format="%.5f")
log.info("best ensembles:\n%s", ensembles.head(5).to_string())
