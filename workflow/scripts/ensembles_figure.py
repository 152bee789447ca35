"""The ranking metric of every ensemble against its number of sequences."""

import pandas as pd

from gynmri.report.figures import plot_ensembles_by_size
from gynmri.runlog import start

start(snakemake.log[0])
ensembles = pd.read_csv(snakemake.input.ensembles, sep="\t")
plot_ensembles_by_size(ensembles, snakemake.params.rank_by, snakemake.output.png)
