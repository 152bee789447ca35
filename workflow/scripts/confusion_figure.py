"""Patient-level K x K confusion matrices of each sequence, the best ensembles and the fused model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

import pandas as pd  # noqa: E402

from gynmri.report import confusion_panels, plot_confusion  # noqa: E402
from gynmri.runlog import start  # noqa: E402

start(snakemake.log[0])
inp = snakemake.input
confusion = pd.read_csv(inp.confusion, sep="\t")
fused = []
if hasattr(inp, "fusion_confusion"):  # the stacked image+clinical model, when configured
    extra = pd.read_csv(inp.fusion_confusion, sep="\t")
    extra = extra[extra["scores"] == "image+clinical"]
    confusion = pd.concat([confusion, extra.assign(scores="image+clinical (fused)")])
    fused = ["image+clinical (fused)"]
panels = confusion_panels(
    snakemake.params.sequences, pd.read_csv(inp.ensembles, sep="\t"), fused=fused
)
plot_confusion(confusion, snakemake.params.classes, panels, snakemake.output.png)
