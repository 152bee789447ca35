"""Logging for workflow scripts: everything a job says goes to its Snakemake log file."""

from __future__ import annotations

import logging
import os
import sys


def start(log_path: str, name: str = "gynmri") -> logging.Logger:
    """Return a logger writing to ``log_path``; warnings and tracebacks go there too."""
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    # Library warnings and uncaught tracebacks written to stderr land in the log as well.
    sys.stderr = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the job
    return logging.getLogger(name)


def limit_xla_threads(threads: int) -> None:
    """Keep a JAX job within the ``threads`` Snakemake gave it (call before jax is imported:
    XLA reads its thread settings at import)."""
    multi = "true" if threads > 1 else "false"
    os.environ.setdefault(
        "XLA_FLAGS",
        f"--xla_cpu_multi_thread_eigen={multi} intra_op_parallelism_threads={threads}",
    )
