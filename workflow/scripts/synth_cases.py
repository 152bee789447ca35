"""Write the synthetic cohort's cases table (with its SIMULATED clinical covariates)."""

from pathlib import Path

from gynmri.io.cases import synth_spec
from gynmri.runlog import start
from gynmri.synth import plan_cohort

log = start(snakemake.log[0])
plan = plan_cohort(synth_spec(snakemake.params.synthetic))
Path(snakemake.output.cases).parent.mkdir(parents=True, exist_ok=True)
# the simulated clinical covariates (age, CA-125, menopausal status) come along after the label
plan.drop(columns="case_index").to_csv(snakemake.output.cases, sep="\t", index=False)
log.info(
    "cases table: %d patients, %s", len(plan), plan.groupby(["center", "label"]).size().to_dict()
)
