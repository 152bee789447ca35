"""Patient-level K x K confusion matrices of each sequence, the best ensembles and the fused model."""

import pandas as pd

from gynmri.report.figures import confusion_panels, plot_confusion
from gynmri.runlog import start

start(snakemake.log[0])
inp = snakemake.input
confusion = pd.read_csv(inp.confusion, sep="\t")
fused = []
if hasattr(inp, "fusion_confusion"):  # the stacked image+clinical model, when configured
    extra = pd.read_csv(inp.fusion_confusion, sep="\t")
    extra = extra[extra["scores"] == "image+clinical"]
    confusion = pd.concat([confusion, extra.assign(scores="image+clinical (fused)")])
    fused = ["image+clinical (fused)"]
ensembles = pd.read_csv(inp.ensembles, sep="\t")
panels = confusion_panels(snakemake.params.sequences, ensembles, fused=fused)
plot_confusion(confusion, snakemake.params.classes, panels, snakemake.output.png)
