"""Publish the patient-level folds (assigned at parse time from the lock file)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.folds import FOLD_COLUMNS, check_covered  # noqa: E402
from gynmri.runlog import start  # noqa: E402

log = start(snakemake.log[0])
folds = pd.DataFrame(snakemake.params.folds, columns=FOLD_COLUMNS)
check_covered(folds, set(folds["patient"]))
folds.to_csv(snakemake.output.folds, sep="\t", index=False)
log.info(
    "patients per fold and label:\n%s",
    folds.groupby(["fold", "label"]).size().unstack().to_string(),
)
