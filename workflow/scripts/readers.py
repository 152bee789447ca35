"""Reader study tables, paired tests and the figure-2 bar chart (two classes: binary calls at the
configured threshold; more: K-class calls, the model's its most probable class)."""

import pandas as pd

from gynmri.evaluation import readers as rs
from gynmri.evaluation.reader_comparisons import reader_tests
from gynmri.report.figures import plot_reader_bars
from gynmri.runlog import start

log = start(snakemake.log[0])
p = snakemake.params
table = pd.read_csv(snakemake.input.readers, sep="\t", dtype=str, keep_default_na=False)
predictions = pd.concat(
    [pd.read_parquet(f) for f in snakemake.input.predictions], ignore_index=True
)
ensembles = pd.read_csv(snakemake.input.ensembles, sep="\t")
name, scores = rs.study_model_scores(predictions, ensembles, p.classes, p.scoring)
calls = rs.validate_readers(
    rs.readers_by_key(table, p.dir_to_key), p.classes, set(scores["patient"])
)
threshold = p.scoring["threshold"]
summary = rs.reader_table(calls, scores, p.classes, p.positive, threshold).assign(model=name)
summary.to_csv(snakemake.output.table, sep="\t", index=False, float_format="%.4f")
tests = reader_tests(calls, scores, p.classes, p.positive, threshold)
tests.to_csv(snakemake.output.tests, sep="\t", index=False, float_format="%.4g")
plot_reader_bars(summary, snakemake.output.png)
log.info(
    "reader study against %s: %d calls, %s",
    name,
    len(calls),
    f"{len(p.classes)} classes (model: most probable class)"
    if len(p.classes) > 2
    else f"binary calls (model: threshold {threshold})",
)
