"""Write one synthetic patient's DICOM files and tumour masks."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))

from gynmri.cases import synth_spec  # noqa: E402
from gynmri.runlog import start  # noqa: E402
from gynmri.synth import plan_cohort, write_patient  # noqa: E402

log = start(snakemake.log[0])
spec = synth_spec(snakemake.params.synthetic)
plan = plan_cohort(spec).set_index("patient_dir", drop=False)
patient_dir = snakemake.wildcards.patient_dir
depth = len(Path(patient_dir).parts)  # the roots are the outputs less the patient's folder
files = write_patient(
    spec,
    plan.loc[patient_dir],
    Path(snakemake.output.dicom).parents[depth - 1],
    Path(snakemake.output.masks).parents[depth - 1],
)
log.info("wrote %d files", len(files))
