"""Assign patients to stratified cross-validation folds."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.folds import assign_folds  # noqa: E402
from gynmri.runlog import start  # noqa: E402

log = start(snakemake.log[0])
folds = assign_folds(
    pd.DataFrame(snakemake.params.patients), snakemake.params.k, snakemake.params.seed
)
folds.to_csv(snakemake.output.folds, sep="\t", index=False)
log.info(
    "patients per fold and label:\n%s",
    folds.groupby(["fold", "label"]).size().unstack().to_string(),
)
