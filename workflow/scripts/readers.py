"""Reader study tables, paired tests and the figure-2 bar chart."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri import readers as rs  # noqa: E402
from gynmri.runlog import start  # noqa: E402

log = start(snakemake.log[0])
p = snakemake.params
table = pd.read_csv(snakemake.input.readers, sep="\t", dtype=str, keep_default_na=False)
predictions = pd.concat(
    [pd.read_parquet(f) for f in snakemake.input.predictions], ignore_index=True
)
name, scores = rs.study_model_scores(
    predictions, pd.read_csv(snakemake.input.ensembles, sep="\t"), p.classes, p.evaluate
)
calls = rs.validate_readers(
    rs.readers_by_key(table, p.dir_to_key), p.classes, set(scores["patient"])
)
threshold = p.evaluate["threshold"]
summary = rs.reader_table(calls, scores, p.classes, p.positive, threshold).assign(model=name)
summary.to_csv(snakemake.output.table, sep="\t", index=False, float_format="%.4f")
rs.reader_tests(calls, scores, p.classes, p.positive, threshold).to_csv(
    snakemake.output.tests, sep="\t", index=False, float_format="%.4g"
)
rs.plot_reader_bars(summary, snakemake.output.png)
log.info("reader study against %s: %d calls", name, len(calls))
