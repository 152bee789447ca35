# Parse-time set-up: validate the config, load the cases table, derive patient keys and folds.
# Nothing here reads DICOM pixels: planning must stay fast at study scale.
#
# Every setting that a rule's output depends on reaches it through its params (or an input
# file), and only those settings: with the profile's rerun trigger `params`, a changed setting
# reruns exactly the jobs it changes. Scripts never read `snakemake.config`.
import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

try:
    import gynmri
except ImportError:
    raise WorkflowError(
        "the gynmri package is not installed in the Python that runs snakemake: "
        f"pip install -e {workflow.basedir}"
    ) from None

from gynmri.config import ConfigError, localiser_cfg, result_settings, validate_config
from gynmri.io.cases import covariate_columns, load_cases, read_slice_ranges, subgroup_columns
from gynmri.io.deid import load_secret, secret_id
from gynmri.preprocessing.sequences import check_known, load_rules
from gynmri.training.folds import LeakageError, split, update_lock

_SOURCE = Path(workflow.basedir) / "src" / "gynmri"
if _SOURCE.is_dir() and Path(gynmri.__file__).parent.resolve() != _SOURCE.resolve():
    logger.warning(
        f"gynmri is imported from {Path(gynmri.__file__).parent}, not from this workflow's "
        f"{_SOURCE}: jobs run that code; pip install -e {workflow.basedir} to run this one"
    )
# Where the package's source is, for the conda environments' post-deploy scripts.
os.environ.setdefault("GYNMRI_SOURCE", str(workflow.basedir))

try:
    validate_config(config)  # the schema's defaults are filled in here, once
except ConfigError as err:
    raise WorkflowError(str(err)) from None

SYNTHETIC = bool(config["cohort"].get("synthetic"))
CASES = load_cases(config)  # patient (key), patient_dir, center, label, label_index
SECRET_ID = secret_id(load_secret(config["deid"], synthetic=SYNTHETIC))
PATIENTS = CASES["patient"].tolist()
# One record per patient key, looked up by the input functions of every job (a dict: a pandas
# lookup per job costs seconds of planning at study scale).
CASE_RECORDS = {
    row["patient"]: row
    for row in CASES[["patient", "patient_dir", "center", "label", "label_index"]].to_dict(
        "records"
    )
}
RANGES = read_slice_ranges(config["cohort"]["slice_ranges"])  # {patient_dir: [rows]}
SEQUENCES = config["sequences"]["use"]
# The settings each network is trained with, without the resource keys (threads, GPUs, memory,
# run time), which do not change a model: changing them must not retrain anything.
CLASSIFIER_TRAIN = result_settings(config["train"])
LOCALISER = localiser_cfg(config["train"], config["detect"], config["model"])
# Sequences whose localiser network is trained (detect/guide, or every sequence), and those read
# where the guide's finds the tumour (gynmri.localise.carry).
GUIDE = config["detect"]["guide"]
LOCALISED = [GUIDE] if GUIDE else SEQUENCES
CARRIED = [s for s in SEQUENCES if s not in LOCALISED]

# The test-time views every classifier prediction averages (config evaluate/tta; mirrored only
# when training flipped), None: the slice as it is.
TTA = (
    {"shift_px": 1, "flip_lr": bool(config["train"]["augment"]["flip_lr"])}
    if config["evaluate"]["tta"]
    else None
)
# How slice probabilities become patient and ensemble scores (what readers, the slice-selection
# evaluation and gynmri predict need of config evaluate).
SCORING = {k: config["evaluate"][k] for k in ("aggregate", "combine", "threshold")}
# What the evaluation and the fusion need of config evaluate: all but the keys only the clinical
# evaluation reads, so that changing a recalibration or a subgroup reruns that evaluation only.
EVALUATION = {
    k: v
    for k, v in config["evaluate"].items()
    if k not in ("recalibrate", "subgroups", "decision_points")
}
# Folds are fixed at parse time from the lock file, so that each training job's inputs are
# exactly its training patients: a new case reruns only the trainings whose set it joins.
# FOLDS drive the whole run (folds/scheme kfold: stratified; centre: one per hospital);
# EXTERNAL_FOLDS hold one hospital out each (scheme centre: FOLDS themselves; both: numbered
# after the k-fold ones, training classifiers only, for results/metrics/external.tsv).
SCHEME = config["folds"]["scheme"]


def _lock(scheme):
    return update_lock(
        config["folds"]["lock"],
        CASES[["patient", "label", "center"]],
        config["folds"].get("k"),
        config["folds"]["seed"],
        scheme,
    )


try:
    FOLD_TABLE = _lock("centre" if SCHEME == "centre" else "kfold")
    EXTERNAL_TABLE = None
    if SCHEME != "kfold":
        EXTERNAL_TABLE = _lock("centre")
        if SCHEME == "both":  # after the k-fold folds: fold k + hospital number
            EXTERNAL_TABLE = EXTERNAL_TABLE.assign(
                fold=EXTERNAL_TABLE["fold"] + config["folds"]["k"]
            )
    FOLDS = (
        list(range(config["folds"]["k"])) if SCHEME != "centre" else sorted(set(FOLD_TABLE["fold"]))
    )
    EXTERNAL_FOLDS = [] if EXTERNAL_TABLE is None else sorted(set(EXTERNAL_TABLE["fold"]))
    SPLITS = {k: split(FOLD_TABLE, k) for k in FOLDS}  # fold -> (train, test), leak-checked
    SPLITS.update({k: split(EXTERNAL_TABLE, k) for k in EXTERNAL_FOLDS})
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
    kind="slices|wide",
    part="train|test",


def network_resources(mem_mb, runtime):
    """Return the resources of a job that runs a network (training, prediction, automatic
    selection, Grad-CAM): the GPUs of config train/gpus. profiles/slurm sends exactly the rules
    that request a GPU to its GPU partition (checked by tests/test_slurm_profile.py)."""
    fraction = config["train"]["gpu_memory_fraction"]  # a resource: changing it reruns nothing
    return {
        "gpu": config["train"]["gpus"],
        "gpu_memory": "as-needed" if fraction is None else str(fraction),
        "mem_mb": mem_mb,
        "runtime": runtime,
    }


def case_record(wildcards):
    """Return what ingest needs to know of a patient: key, folder, center, label, class index."""
    return CASE_RECORDS[wildcards.patient]


def patient_inputs(wildcards):
    """Return the DICOM (and, for synthetic cohorts, mask) folders of one patient."""
    patient_dir = case_record(wildcards)["patient_dir"]
    inputs = {"dicom": f"{config['cohort']['dicom_root']}/{patient_dir}"}
    masks = f"{config['cohort']['masks_root']}/{patient_dir}"
    # the same inputs whether the cohort was synthetic or not: switching does not rerun ingest
    if SYNTHETIC or os.path.isdir(masks):
        inputs["masks"] = masks
    return inputs


def fold_patients(wildcards, part):
    """Return the sorted patient keys of a fold's training ('train') or test ('test') set."""
    train, test = SPLITS[int(wildcards.fold)]
    return sorted(train if part == "train" else test)


def fold_tables(kind, part):
    """Return an input function giving the tables ('slices' or 'wide') of a fold's training or
    test patients."""
    return lambda wc: [f"results/{kind}/{p}.parquet" for p in fold_patients(wc, part)]


def listing_of(kind, part):
    """Return the file listing the tables ('slices' or 'wide') of a fold's training or test
    patients, written by the fold_listing jobs; the one input through which network jobs
    depend on those tables."""
    return f"results/splits/{kind}/fold{{fold}}_{part}.txt"


def reader_outputs():
    """Return the reader-study outputs, or nothing when no readers table is configured."""
    if not config["cohort"]["readers"]:
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
        "scores": "results/metrics/fusion_scores.tsv",
    }
    return {f"fusion_{part}": paths[part] for part in parts}


def clinical_outputs(captioned=False):
    """Return the clinical evaluation's tables and figures by name (external validation only
    when folds/scheme holds hospitals out); ``captioned``: flagged for snakemake --report (the
    rule's outputs, not another rule's inputs)."""

    def shown(path, caption):
        if not captioned:
            return path
        return report(path, caption=f"../report/{caption}.rst", category="Clinical evaluation")

    out = {
        "calibration": shown("results/metrics/calibration.tsv", "calibration"),
        "calibration_curves": "results/metrics/calibration_curves.tsv",
        "decision": shown("results/metrics/decision.tsv", "decision"),
        "subgroups": shown("results/metrics/subgroups.tsv", "subgroups"),
        "calibration_png": shown("results/figures/calibration.png", "calibration"),
        "decision_png": shown("results/figures/decision.png", "decision"),
        "subgroups_png": shown("results/figures/subgroups.png", "subgroups"),
    }
    if EXTERNAL_FOLDS:
        out["external"] = shown("results/metrics/external.tsv", "external")
    return out


def external_inputs(wildcards):
    """Return the leave-one-centre-out predictions and folds when they are not the run's own
    (folds/scheme both), else nothing."""
    if SCHEME != "both":
        return {}
    return {
        "external_predictions": expand(
            "results/models/{sequence}/fold{fold}/predictions.parquet",
            sequence=SEQUENCES,
            fold=EXTERNAL_FOLDS,
        ),
        "external_folds": "results/splits/external_folds.tsv",
    }


def final_outputs():
    """Return the targets of a full run."""
    synthetic_cases = [config["cohort"]["cases"]] if SYNTHETIC else []
    return (
        synthetic_cases
        + list(reader_outputs().values())
        + list(fusion_outputs().values())
        + [
            "results/report/index.html",
            "results/qc/files.tsv",
            "results/metrics/sequences.tsv",
            "results/metrics/ensembles.tsv",
            "results/metrics/selection_patients.tsv",
            "results/figures/localiser.png",
            "results/models/manifest.json",
            "results/report/model_card.md",
        ]
    )


def one_of(names):
    """Return a wildcard constraint matching exactly ``names`` (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def guide_detector(wc):
    """Return the guide's localiser of the fold for a carried sequence, else nothing."""
    if wc.sequence in LOCALISED:
        return []
    return f"results/detectors/{GUIDE}/fold{wc.fold}/model"
