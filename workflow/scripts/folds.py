"""Publish the patient-level folds (assigned at parse time from the lock file)."""

import pandas as pd

from gynmri.runlog import start
from gynmri.training.folds import FOLD_COLUMNS, check_covered

log = start(snakemake.log[0])
folds = pd.DataFrame(snakemake.params.folds, columns=FOLD_COLUMNS)
check_covered(folds, set(folds["patient"]))
folds.to_csv(snakemake.output.folds, sep="\t", index=False)
per_fold = folds.groupby(["fold", "label"]).size().unstack().to_string()
log.info("patients per fold and label:\n%s", per_fold)
