"""Write one synthetic patient's DICOM files and tumour masks."""

from pathlib import Path

from gynmri.io.cases import synth_spec
from gynmri.runlog import start
from gynmri.synth import plan_cohort, write_patient

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
