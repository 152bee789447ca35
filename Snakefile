# gynmri: raw multi-center MRI DICOM -> harmonized slices -> folds -> MobileNetV2 per
# (sequence, fold) -> ensembles over sequences -> report. See README.md.
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless a --configfile is given: a configuration file replaces it whole
# rather than being merged into it (a merge would mix two tasks' classes and cohorts).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/folds.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/detect.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/fusion.smk"
include: "workflow/rules/readers.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
