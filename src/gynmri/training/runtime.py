"""Start-up of jobs that run a network: XLA threads, the log file, the compilation cache.

Nothing here imports jax at module level: :func:`limit_xla_threads` must run before jax is
imported (XLA reads its thread settings then).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from gynmri.runlog import start

#: Environment variable naming the persistent XLA compilation cache (default .cache/jax).
JAX_CACHE_ENV = "GYNMRI_JAX_CACHE"


def limit_xla_threads(threads: int) -> None:
    """Keep a JAX job within the ``threads`` Snakemake gave it (XLA reads its thread settings
    when jax is imported, so this must run first)."""
    multi = "true" if threads > 1 else "false"
    os.environ.setdefault(
        "XLA_FLAGS",
        f"--xla_cpu_multi_thread_eigen={multi} intra_op_parallelism_threads={threads}",
    )


def enable_compilation_cache(cache_dir: str | Path) -> None:
    """Turn on jax's persistent compilation cache in ``cache_dir`` (shared by later processes):
    jobs with the same architecture and shapes load the compiled step instead of compiling."""
    import jax

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def start_jax_job(log_path: str, threads: int) -> logging.Logger:
    """Start a job that runs a network: XLA threads limited to ``threads`` (before jax is
    imported), the log file, and the shared compilation cache."""
    limit_xla_threads(threads)
    log = start(log_path)
    enable_compilation_cache(Path(os.environ.get(JAX_CACHE_ENV, ".cache/jax")).resolve())
    return log
