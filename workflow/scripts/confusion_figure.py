"""Patient-level confusion matrices of each sequence and the best ensembles."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.report import plot_confusion  # noqa: E402
from gynmri.runlog import start  # noqa: E402

start(snakemake.log[0])
plot_confusion(
    pd.read_csv(snakemake.input.sequences, sep="\t"),
    pd.read_csv(snakemake.input.ensembles, sep="\t"),
    snakemake.params.positive,
    snakemake.output.png,
)
