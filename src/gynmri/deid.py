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

#: Used only for synthetic cohorts, which hold no real patient; never for real data.
DEMO_KEY = b"gynmri-synthetic-demo-key"


class MissingKeyError(RuntimeError):
    """No pseudonymisation secret was given for a real cohort."""


def load_secret(deid_cfg: dict, synthetic: bool) -> bytes:
    """Return the pseudonymisation secret from the configured env variable or file.

    Raises:
        MissingKeyError: real data and no secret found.
    """
    env_name = deid_cfg.get("key_env", "GYNMRI_KEY")
    if os.environ.get(env_name):
        return os.environ[env_name].encode()
    key_file = deid_cfg.get("key_file")
    if key_file:
        path = Path(key_file)
        if not path.is_file():
            raise MissingKeyError(f"deid/key_file {path} does not exist")
        return path.read_bytes().strip()
    if synthetic:
        return DEMO_KEY
    raise MissingKeyError(
        f"no pseudonymisation secret: set the environment variable {env_name} (or config "
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
