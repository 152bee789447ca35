# Parse-time set-up: validate the config, load the cases table, derive patient keys.
# Nothing here reads DICOM pixels: planning must stay fast at study scale.
import os

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from gynmri.cases import load_cases, read_slice_ranges
from gynmri.config import ConfigError, check_consistency


validate(config, schema="../../config/schema.yaml")
try:
    check_consistency(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

SYNTHETIC = bool(config["cohort"].get("synthetic"))
CASES = load_cases(config)  # patient (key), patient_dir, center, label, label_index
PATIENTS = CASES["patient"].tolist()
RANGES = read_slice_ranges(config["cohort"].get("slice_ranges"))  # {patient_dir: [rows]}
SEQUENCES = config["sequences"]["use"]
FOLDS = list(range(config["folds"]["k"]))
ROOT = Path(workflow.basedir)


wildcard_constraints:
    patient="P[0-9a-f]+",
    sequence="|".join(SEQUENCES),
    fold=r"\d+",


def case(wildcards):
    """Return the cases-table row of a patient key."""
    return CASES.set_index("patient").loc[wildcards.patient]


def cases_table():
    """Return the cases table path (a workflow output for synthetic cohorts)."""
    return config["cohort"]["cases"]


def patient_inputs(wildcards):
    """Return the DICOM (and, for synthetic cohorts, mask) folders of one patient."""
    row = case(wildcards)
    inputs = {"dicom": f"{config['cohort']['dicom_root']}/{row.patient_dir}"}
    if SYNTHETIC:
        inputs["masks"] = f"{config['cohort']['masks_root']}/{row.patient_dir}"
    return inputs


def final_outputs():
    """Return the targets of a full run."""
    return [
        "results/report/index.html",
        "results/qc/files.tsv",
        "results/metrics/sequences.tsv",
        "results/metrics/ensembles.tsv",
    ]
