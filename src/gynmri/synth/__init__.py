"""Synthetic multi-center gynecologic MRI cohorts: DICOM series with planted identifiers and masks.

Usage: ``write_cohort(SynthSpec({"myoma": 20, "sarcoma": 12}), out_dir)`` or ``gynmri synth OUT``.
Classes: uterine ``myoma``/``sarcoma``, ovarian (adnexal masses) ``benign``/``borderline``/
``malignant``. The cases table carries SIMULATED clinical covariates (``COVARIATES``).
``SynthSpec(..., sequences=SEQUENCES)`` writes all 15 canonical sequences (default: T2axi,
T2sag, DWI, ADC), each center those of its protocol (:func:`patient_sequences`).
"""

from .centers import CENTERS, CenterProfile
from .clinical import CLINICAL, COVARIATES, simulate_covariates
from .phantom import CLASS_APPEARANCE
from .writer import (
    DEFAULT_SEQUENCES,
    SEQUENCES,
    SynthSpec,
    main,
    patient_sequences,
    plan_cohort,
    planted_identifiers,
    write_cohort,
    write_patient,
)

__all__ = [
    "CENTERS",
    "CLASS_APPEARANCE",
    "CLINICAL",
    "COVARIATES",
    "DEFAULT_SEQUENCES",
    "SEQUENCES",
    "CenterProfile",
    "SynthSpec",
    "main",
    "patient_sequences",
    "plan_cohort",
    "planted_identifiers",
    "simulate_covariates",
    "write_cohort",
    "write_patient",
]
