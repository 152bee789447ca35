"""ROC curves of every sequence and the best ensemble, with the operating points."""

import pandas as pd

from gynmri.report.figures import operating_points, plot_roc
from gynmri.runlog import start

start(snakemake.log[0])
inp = snakemake.input
points = operating_points(
    pd.read_csv(inp.sequences, sep="\t"), pd.read_csv(inp.ensembles, sep="\t")
)
plot_roc(pd.read_csv(inp.roc, sep="\t"), snakemake.output.png, points)
