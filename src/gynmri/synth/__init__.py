"""Synthetic multi-centre gynecologic MRI cohorts: DICOM series with planted identifiers and masks.

Usage: ``write_cohort(SynthSpec({"myoma": 20, "sarcoma": 12}), out_dir)`` or ``gynmri synth OUT``.
"""

from .centers import CENTERS, CenterProfile
from .phantom import CLASS_APPEARANCE
from .writer import (
    SynthSpec,
    main,
    plan_cohort,
    planted_identifiers,
    write_cohort,
    write_patient,
)

__all__ = [
    "CENTERS",
    "CLASS_APPEARANCE",
    "CenterProfile",
    "SynthSpec",
    "main",
    "plan_cohort",
    "planted_identifiers",
    "write_cohort",
    "write_patient",
]
