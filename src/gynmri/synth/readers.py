"""SIMULATED reader study: a readers table for the synthetic cohort (no real reader data).

Six simulated readers (3 specialists S1-S3, 3 residents R1-R3) each call every patient twice,
unaided and AI-assisted. Each reader is right on a patient of a positive class (e.g. sarcoma)
with probability about the role's sensitivity and on a patient of a negative class (e.g. myoma)
with about its specificity, the targets taken from the study (Toyohara, Sone et al. 2022):

================  ===========  ===========
role, session     sensitivity  specificity
================  ===========  ===========
specialist, un.   0.710        0.938
resident, un.     0.476        0.915
resident, ass.    0.876        0.937
specialist, ass.  0.80         0.95  (not reported; "a little better than unaided")
================  ===========  ===========

Each reader's rates are jittered by a few points, and readers agree more than chance: every
patient has a latent difficulty shared by all readers (Gaussian copula, correlation ``rho``),
so that easy patients are called right by most readers. Deterministic from ``seed``.

Wrong calls. With two classes a wrong call is the other class. With more (e.g. benign,
borderline, malignant), the classes are taken as ordered by severity in task order and a wrong
call on a class-i patient names class j with probability proportional to 1 / |i - j|: readers
confuse neighbouring classes most (a borderline mass is called benign or malignant, a benign
one rather borderline than malignant). The targets above are then the per-class recalls (the
positive classes' and the negative classes'); the binary view's specificity comes out higher
than its target, since a negative patient called another negative class is no false positive.
These numbers are a simulation for exercising the pipeline, never evidence of anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

#: (role, session) -> (sensitivity, specificity) targets of the simulation.
TARGETS = {
    ("specialist", "unaided"): (0.710, 0.938),
    ("resident", "unaided"): (0.476, 0.915),
    ("resident", "assisted"): (0.876, 0.937),
    ("specialist", "assisted"): (0.80, 0.95),
}
READERS = {"specialist": ["S1", "S2", "S3"], "resident": ["R1", "R2", "R3"]}


def confusion_weights(n_classes: int) -> np.ndarray:
    """Return the K x K probabilities of a wrong call: row i (the true class), column j (the
    call), proportional to 1 / |i - j| off the diagonal, zero on it; rows sum to 1."""
    i = np.arange(n_classes)
    distance = np.abs(i[:, None] - i[None, :]).astype(float)
    with np.errstate(divide="ignore"):
        w = np.where(distance > 0, 1 / distance, 0.0)
    return w / w.sum(axis=1, keepdims=True)


def _wrong_calls(rng: np.random.Generator, index: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Draw one wrong class index per patient from its row of ``weights``."""
    cumulative = weights[index].cumsum(axis=1)
    x = rng.random(len(index))[:, None] * cumulative[:, -1:]
    drawn = np.minimum((x >= cumulative).sum(axis=1), len(weights) - 1)
    # a zero-weight (own) class has no width; rounding alone could land there: take a neighbour
    return np.where(drawn == index, np.where(index > 0, index - 1, index + 1), drawn)


def simulate_readers(
    patients: pd.DataFrame,
    positive: list[str],
    classes: list[str],
    seed: int = 0,
    jitter: float = 0.03,
    rho: float = 0.3,
) -> pd.DataFrame:
    """Return a SIMULATED readers table (reader, role, session, patient, call).

    ``patients``: columns patient (pseudonymous key) and label (a class). A correct call names
    the patient's own class. A wrong call names, with two classes, the other class; with more,
    another class drawn by :func:`confusion_weights` (neighbours in task order most often).
    ``jitter``: spread of each reader's rates around the role's targets; ``rho``: correlation of
    the readers' errors through the shared patient difficulty.
    """
    unknown = sorted(set(patients["label"]) - set(classes))
    if unknown:
        raise ValueError(f"patients with labels {unknown} not in classes {classes}")
    negative = [c for c in classes if c not in positive]
    if not positive or not negative:
        raise ValueError("need at least one positive and one negative class")
    rng = np.random.default_rng(seed)
    keys = patients["patient"].astype(str).to_numpy()
    labels = patients["label"].to_numpy()
    truth = np.isin(labels, positive)
    several = len(classes) > 2
    if several:
        index = np.array([classes.index(label) for label in labels], int)
        weights = confusion_weights(len(classes))
    difficulty = rng.standard_normal(len(keys))  # shared by every reader and session
    rows = []
    for role, readers in READERS.items():
        for reader in readers:
            shift = rng.normal(0, jitter, 2)  # the reader's own skill, kept over sessions
            for session in ("unaided", "assisted"):
                sens, spec = np.clip(np.array(TARGETS[(role, session)]) + shift, 0.02, 0.995)
                p_right = np.where(truth, sens, spec)
                latent = np.sqrt(rho) * difficulty + np.sqrt(1 - rho) * rng.standard_normal(
                    len(keys)
                )
                right = latent < norm.ppf(p_right)  # P(right) = p_right exactly
                if several:
                    wrong = np.asarray(classes, dtype=object)[_wrong_calls(rng, index, weights)]
                else:  # two classes: the other class (these draws keep old tables identical)
                    wrong_pos = rng.choice(positive, len(keys))
                    wrong_neg = rng.choice(negative, len(keys))
                    wrong = np.where(truth, wrong_neg, wrong_pos)
                calls = np.where(right, labels, wrong)
                rows.append(
                    pd.DataFrame(
                        {
                            "reader": reader,
                            "role": role,
                            "session": session,
                            "patient": keys,
                            "call": calls,
                        }
                    )
                )
    return pd.concat(rows, ignore_index=True)
