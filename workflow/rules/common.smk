# Parse-time set-up: validate the config, load the cases table, derive patient keys.
# Nothing here reads DICOM pixels: planning must stay fast at study scale.
import os

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from gynmri.cases import covariate_columns, load_cases, read_slice_ranges
from gynmri.config import ConfigError, check_consistency
from gynmri.folds import LeakageError, split, update_lock
from gynmri.sequences import check_known, load_rules


validate(config, schema="../../config/schema.yaml")
try:
    check_consistency(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

SYNTHETIC = bool(config["cohort"].get("synthetic"))
CASES = load_cases(config)  # patient (key), patient_dir, center, label, label_index
PATIENTS = CASES["patient"].tolist()
CASES_BY_KEY = CASES.set_index("patient", drop=False)  # indexed once: input functions look up per job
RANGES = read_slice_ranges(config["cohort"].get("slice_ranges"))  # {patient_dir: [rows]}
SEQUENCES = config["sequences"]["use"]
FOLDS = list(range(config["folds"]["k"]))
# Folds are fixed at parse time from the lock file, so that each training job's inputs are
# exactly its training patients: a new case reruns only the trainings whose set it joins.
try:
    FOLD_TABLE = update_lock(
        config["folds"]["lock"],
        CASES[["patient", "label", "center"]],
        config["folds"]["k"],
        config["folds"]["seed"],
    )
    SPLITS = {k: split(FOLD_TABLE, k) for k in FOLDS}  # fold -> (train, test), leak-checked
except (LeakageError, ValueError) as err:
    raise WorkflowError(f"folds: {err}") from None
ROOT = Path(workflow.basedir)


def shipped(path):
    """Return ``path``, or the workflow's own copy when it is relative and absent here (-d)."""
    if os.path.isabs(path) or os.path.exists(path) or not (ROOT / path).exists():
        return path
    return str(ROOT / path)


RULES_FILE = shipped(config["sequences"]["rules"])
try:
    check_known(SEQUENCES, load_rules(RULES_FILE), RULES_FILE)
except ValueError as err:
    raise WorkflowError(str(err)) from None


wildcard_constraints:
    patient="P[0-9a-f]+",
    sequence="|".join(SEQUENCES),
    fold=r"\d+",


def case(wildcards):
    """Return the cases-table row of a patient key."""
    return CASES_BY_KEY.loc[wildcards.patient]


def patient_inputs(wildcards):
    """Return the DICOM (and, for synthetic cohorts, mask) folders of one patient."""
    row = case(wildcards)
    inputs = {"dicom": f"{config['cohort']['dicom_root']}/{row.patient_dir}"}
    masks = f"{config['cohort']['masks_root']}/{row.patient_dir}"
    # the same inputs whether the cohort was synthetic or not: switching does not rerun ingest
    if SYNTHETIC or os.path.isdir(masks):
        inputs["masks"] = masks
    return inputs


def fold_patients(wildcards, part):
    """Return the sorted patient keys of a fold's training ('train') or test ('test') set."""
    train, test = SPLITS[int(wildcards.fold)]
    return sorted(train if part == "train" else test)


def fold_slices(part):
    """Return an input function giving the slice tables of a fold's training or test patients."""
    return lambda wc: [f"results/slices/{p}.parquet" for p in fold_patients(wc, part)]


def fold_wide(part):
    """Return an input function giving the wide tables of a fold's training or test patients."""
    return lambda wc: [f"results/wide/{p}.parquet" for p in fold_patients(wc, part)]


def reader_outputs():
    """Return the reader-study outputs, or nothing when no readers table is configured."""
    if not config["cohort"].get("readers"):
        return {}
    return {
        "readers": "results/metrics/readers.tsv",
        "reader_tests": "results/metrics/reader_tests.tsv",
        "readers_png": "results/figures/readers.png",
    }


def fusion_outputs(parts=("metrics", "coefficients", "classes", "confusion", "summaries")):
    """Return the fusion tables as {'fusion_<part>': path}, or nothing when fusion is off."""
    if not config.get("fusion"):
        return {}
    paths = {
        "metrics": "results/metrics/fusion.tsv",
        "coefficients": "results/metrics/fusion_coefficients.tsv",
        "classes": "results/metrics/fusion_classes.tsv",
        "confusion": "results/metrics/fusion_confusion.tsv",
        "summaries": "results/metrics/fusion_summaries.tsv",
    }
    return {f"fusion_{part}": paths[part] for part in parts}


def final_outputs():
    """Return the targets of a full run."""
    synthetic_cases = [config["cohort"]["cases"]] if SYNTHETIC else []
    return synthetic_cases + list(reader_outputs().values()) + list(fusion_outputs().values()) + [
        "results/report/index.html",
        "results/qc/files.tsv",
        "results/metrics/sequences.tsv",
        "results/metrics/ensembles.tsv",
        "results/metrics/selection_patients.tsv",
        "results/models/manifest.json",
    ]
