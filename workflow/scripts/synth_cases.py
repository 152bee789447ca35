"""Write the synthetic cohort's cases table (with its SIMULATED clinical covariates)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from gynmri.cases import synth_spec  # noqa: E402
from gynmri.runlog import start  # noqa: E402
from gynmri.synth import plan_cohort  # noqa: E402

log = start(snakemake.log[0])
plan = plan_cohort(synth_spec(snakemake.params.synthetic))
Path(snakemake.output.cases).parent.mkdir(parents=True, exist_ok=True)
# the simulated clinical covariates (age, CA-125, menopausal status) come along after the label
plan.drop(columns="case_index").to_csv(snakemake.output.cases, sep="\t", index=False)
log.info(
    "cases table: %d patients, %s", len(plan), plan.groupby(["center", "label"]).size().to_dict()
)
