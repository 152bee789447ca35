"""De-identification: keyed pseudonyms for patients and series.

A pseudonym is an HMAC-SHA256 of the raw value under a secret the user holds (an environment
variable or a file outside ``results/``). Without the secret the pseudonyms cannot be linked back
to patients; with the same secret they are stable across runs, so reruns and new cases keep keys.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from gynmri.config import section

#: Used only for synthetic cohorts, which hold no real patient; never for real data.
DEMO_KEY = b"gynmri-synthetic-demo-key"


class MissingKeyError(RuntimeError):
    """No pseudonymization secret was given for a real cohort."""


def load_secret(deid_cfg: dict, synthetic: bool) -> bytes:
    """Return the pseudonymization secret from the configured env variable or file
    (``deid_cfg``: config deid; keys left out take the schema's defaults).

    Raises:
        MissingKeyError: real data and no secret found.
    """
    cfg = section("deid", deid_cfg)
    env_name = cfg["key_env"]
    if os.environ.get(env_name):
        return os.environ[env_name].encode()
    key_file = cfg["key_file"]
    if key_file:
        path = Path(key_file)
        if not path.is_file():
            raise MissingKeyError(f"deid/key_file {path} does not exist")
        return path.read_bytes().strip()
    if synthetic:
        return DEMO_KEY
    raise MissingKeyError(
        f"no pseudonymization secret: set the environment variable {env_name} (or config "
        "deid/key_file) to a long random string and keep it safe; the same secret must be used "
        "for every rerun so that patient keys stay stable"
    )


def pseudonym(secret: bytes, value: str, prefix: str = "P", length: int = 10) -> str:
    """Return a short keyed hash of ``value``, e.g. ``P3fa94c01de``."""
    digest = hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()
    return prefix + digest[:length]


def patient_key(secret: bytes, center: str, patient_dir: str) -> str:
    """Return the pseudonymous key of one row of the cases table."""
    return pseudonym(secret, f"{center}\x00{patient_dir}", prefix="P")


def series_key(secret: bytes, series_uid: str) -> str:
    """Return the pseudonym that stands for a SeriesInstanceUID in outputs."""
    return pseudonym(secret, series_uid, prefix="S", length=12)


def secret_id(secret: bytes) -> str:
    """Return a fingerprint of the secret (a keyed hash of a constant: it reveals nothing of the
    secret), so that a job can check it sees the secret the workflow was planned with."""
    return pseudonym(secret, "gynmri secret fingerprint", prefix="K", length=12)


def job_secret(deid_cfg: dict, expected_id: str) -> bytes:
    """Return the secret a workflow job sees, after checking that it is the one the workflow was
    planned with (``expected_id``: its :func:`secret_id`).

    Raises:
        MissingKeyError: the job sees another secret (e.g. the variable is not passed to jobs).
    """
    secret = load_secret(deid_cfg, synthetic=True)
    if secret_id(secret) != expected_id:
        name = section("deid", deid_cfg)["key_env"]
        raise MissingKeyError(
            f"this job sees another pseudonymization secret than the workflow was planned with: "
            f"make {name} (or deid/key_file) available to the jobs as well"
        )
    return secret
