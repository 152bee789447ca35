"""SIMULATED clinical covariates of the synthetic cohort: age, CA-125 and menopausal status.

These values are a simulation for exercising the pipeline (covariate fusion, imputation of
missing values), never evidence of anything. The class-dependent distributions are plausible
round numbers, chosen so that the classes overlap:

==========  ===============  ====================  ===================
class       age (years)      CA-125 median (U/mL)  log-sd of CA-125
==========  ===============  ====================  ===================
benign      42 +- 14         20                    0.9
borderline  48 +- 15         35                    1.0
malignant   57 +- 12         250                   1.4
myoma       45 +- 8          18                    0.7
sarcoma     55 +- 11         30                    1.1
==========  ===============  ====================  ===================

Age is a rounded normal draw clipped to 18-90 years; CA-125 is log-normal, clipped to
2-20000 U/mL and rounded to one decimal, missing (NaN, an empty cell in cases.tsv) for about
5 % of patients; menopausal status is "post" with a logistic probability in age (50 % at 51
years, scale 2.5 years), else "pre". Deterministic from (seed, case_index) and the class, on
its own random stream, so that no other part of the synthetic cohort changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The simulated covariate columns, in the order plan_cohort and cases.tsv give them.
COVARIATES = ("age", "ca125", "menopausal")

P_CA125_MISSING = 0.05
MENOPAUSE_AGE = 51.0  # years: 50 % post-menopausal
MENOPAUSE_SCALE = 2.5  # years: logistic scale around MENOPAUSE_AGE


@dataclass(frozen=True)
class ClinicalProfile:
    """Class-dependent distributions of the simulated covariates."""

    age_mean: float
    age_sd: float
    ca125_median: float  # U/mL
    ca125_log_sd: float  # standard deviation of log(CA-125)


#: SIMULATED: class name -> covariate distributions (see the module docstring).
CLINICAL: dict[str, ClinicalProfile] = {
    "benign": ClinicalProfile(42, 14, 20, 0.9),
    "borderline": ClinicalProfile(48, 15, 35, 1.0),
    "malignant": ClinicalProfile(57, 12, 250, 1.4),
    "myoma": ClinicalProfile(45, 8, 18, 0.7),
    "sarcoma": ClinicalProfile(55, 11, 30, 1.1),
}


def simulate_covariates(label: str, seed: int, case_index: int) -> dict[str, object]:
    """Return the SIMULATED covariates of one patient: age (int), ca125 (float, NaN if missing),
    menopausal ("pre" | "post").

    Raises:
        ValueError: the class has no clinical profile.
    """
    if label not in CLINICAL:
        raise ValueError(f"no simulated covariates for class {label!r}: known {sorted(CLINICAL)}")
    prof = CLINICAL[label]
    rng = np.random.default_rng([seed, case_index, 31])  # own stream: nothing else changes
    z_age, z_ca, u_meno, u_missing = rng.normal(), rng.normal(), rng.random(), rng.random()
    age = int(np.clip(round(prof.age_mean + prof.age_sd * z_age), 18, 90))
    ca125 = float(np.clip(prof.ca125_median * np.exp(prof.ca125_log_sd * z_ca), 2.0, 20000.0))
    p_post = 1.0 / (1.0 + np.exp(-(age - MENOPAUSE_AGE) / MENOPAUSE_SCALE))
    return {
        "age": age,
        "ca125": float("nan") if u_missing < P_CA125_MISSING else round(ca125, 1),
        "menopausal": "post" if u_meno < p_post else "pre",
    }
