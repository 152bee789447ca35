"""Training curves of every (sequence, fold) model."""

from gynmri.report.figures import plot_training, read_histories
from gynmri.runlog import start

start(snakemake.log[0])
plot_training(read_histories(snakemake.input.histories), snakemake.output.png)
