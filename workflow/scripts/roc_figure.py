"""ROC curves of every sequence and the best ensemble, with the operating points."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.report import operating_points, plot_roc  # noqa: E402
from gynmri.runlog import start  # noqa: E402

start(snakemake.log[0])
points = operating_points(
    pd.read_csv(snakemake.input.sequences, sep="\t"),
    pd.read_csv(snakemake.input.ensembles, sep="\t"),
)
plot_roc(pd.read_csv(snakemake.input.roc, sep="\t"), snakemake.output.png, points)
