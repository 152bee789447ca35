"""Start-up of workflow jobs: their log file (jobs that run a network start with
:func:`gynmri.training.runtime.start_jax_job`).

Everything a job says goes to its Snakemake log file, one line per meaningful step; third-party
libraries speak there only for warnings and errors.
"""

from __future__ import annotations

import atexit
import logging
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

#: Libraries whose INFO chatter (per checkpoint, per compilation) would flood the job logs.
QUIET_LOGGERS = ("absl", "jax", "orbax", "flax", "matplotlib", "PIL", "fontTools")


def start(log_path: str, name: str = "gynmri") -> logging.Logger:
    """Return a logger writing to ``log_path``; warnings and tracebacks go there too."""
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    # Library warnings and uncaught tracebacks written to stderr land in the log as well.
    sys.stderr = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    log = logging.getLogger(name)
    # How long the interpreter and the imports took, and the whole job (for bench/profile.py).
    born = psutil.Process().create_time()
    log.info("job started %.1f s after its process (interpreter and imports)", time.time() - born)
    atexit.register(
        lambda: log.info(
            "job finished %.1f s after its process (peak memory %.0f MB)",
            time.time() - born,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        )
    )
    return log


@contextmanager
def timed(log: logging.Logger, what: str) -> Iterator[None]:
    """Log ``<what>: <seconds> s`` once the block has run."""
    start = time.perf_counter()
    yield
    log.info("%s: %.1f s", what, time.perf_counter() - start)
