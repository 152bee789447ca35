"""Write the SIMULATED readers table of a synthetic cohort (3 specialists, 3 residents)."""

import pandas as pd

from gynmri.runlog import start
from gynmri.synth.readers import simulate_readers

log = start(snakemake.log[0])
patients = pd.DataFrame(snakemake.params.patients)
table = simulate_readers(
    patients[["patient", "label"]],
    snakemake.params.positive,
    snakemake.params.classes,
    snakemake.params.seed,
)
key_to_dir = dict(zip(patients["patient"], patients["patient_dir"], strict=True))
table = table.assign(patient_dir=table["patient"].map(key_to_dir)).drop(columns="patient")
table.to_csv(snakemake.output.readers, sep="\t", index=False)
log.info("simulated readers table: %d calls", len(table))
