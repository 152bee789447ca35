"""Training curves of every (sequence, fold) model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from gynmri.report import plot_training, read_histories  # noqa: E402
from gynmri.runlog import start  # noqa: E402

start(snakemake.log[0])
plot_training(read_histories(snakemake.input.histories), snakemake.output.png)
