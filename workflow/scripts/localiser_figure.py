"""The localiser's tumour against the annotation on a sample of the first fold's held-out
patients (no network runs here: predict_auto saved the kept tumours)."""

import numpy as np
import pandas as pd

from gynmri.io.slices import read_wide
from gynmri.report.figures import plot_localiser_sample
from gynmri.runlog import start

start(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
masks = {}
for seq, path in zip(p.sequences, inp.masks, strict=True):
    with np.load(path) as saved:
        masks[seq] = {key: saved[key] for key in saved.files}
wide = read_wide(inp.wide)
wide = wide[wide["sequence"].isin(p.sequences)]
selection = pd.concat([pd.read_parquet(s) for s in inp.selection], ignore_index=True)
plot_localiser_sample(wide, masks, selection, p.sequences, p.classes, snakemake.output.png)
