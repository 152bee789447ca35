"""Start-up of jobs that run a network: XLA threads, the log file, the compilation cache.

Nothing here imports jax at module level: :func:`limit_xla_threads` must run before jax is
imported (XLA reads its thread settings then).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
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


#: gpu_memory meaning "allocate GPU memory as needed" (no share reserved at start).
AS_NEEDED = "as-needed"


def set_gpu_memory(gpu_memory: str | float | None) -> str:
    """Set how this job's XLA takes GPU memory (before jax is imported) and return it in words.

    ``"as-needed"`` (or None): allocate as needed (``XLA_PYTHON_CLIENT_PREALLOCATE=false``), so
    that several jobs share one GPU; a number in (0, 1]: reserve that share of the GPU at start
    (``XLA_PYTHON_CLIENT_MEM_FRACTION``; JAX's default reserves 75 %, which leaves no room for a
    second job). Settings the user exported win.
    """
    if os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE") or os.environ.get(
        "XLA_PYTHON_CLIENT_MEM_FRACTION"
    ):
        return "set by the environment: " + ", ".join(
            f"{k}={os.environ[k]}"
            for k in ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION")
            if k in os.environ
        )
    if gpu_memory is None or str(gpu_memory) == AS_NEEDED:
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        return "allocated as needed (XLA_PYTHON_CLIENT_PREALLOCATE=false)"
    fraction = float(gpu_memory)
    if not 0 < fraction <= 1:
        raise ValueError(f"gpu_memory must be 'as-needed' or a share in (0, 1], got {gpu_memory}")
    os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{fraction:g}"
    return f"{fraction:.0%} of the GPU reserved (XLA_PYTHON_CLIENT_MEM_FRACTION={fraction:g})"


def describe_device() -> str:
    """Return the device jax computes on, in words (kind, and memory for a GPU)."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores on this machine)"
    limit = (device.memory_stats() or {}).get("bytes_limit")
    memory = f", {limit / 2**30:.1f} GiB usable" if limit else ""
    return f"{device.platform}:{device.id} {device.device_kind}{memory}"


def compilation_cache_dir() -> Path:
    """Return the persistent compilation cache: $GYNMRI_JAX_CACHE, else .cache/jax here."""
    return Path(os.environ.get(JAX_CACHE_ENV, ".cache/jax")).resolve()


def enable_compilation_cache(cache_dir: str | Path) -> None:
    """Turn on jax's persistent compilation cache in ``cache_dir`` (shared by later processes):
    jobs with the same architecture and shapes load the compiled step instead of compiling."""
    import jax

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    # Every program, however small: a job compiles about 70 small ones (parameter initialisers,
    # the sampler's and optimizer's eager ops), about 2-7 s a job on 2 cores, which loads in ms.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@contextmanager
def compiling_once(program: str) -> Iterator[None]:
    """Hold the lock of ``program`` (a string naming everything its compilation depends on) in
    the persistent compilation cache while this process compiles it, or loads it from there.

    Jobs that start together would each compile the same program (30-60 s on 2 cores); with
    the lock one compiles and the others wait, then load it in about a second. Without a
    persistent cache, or where the file system has no locks, nothing is held.
    """
    import jax

    cache = jax.config.jax_compilation_cache_dir
    handle = None
    if cache:
        try:
            import fcntl

            locks = Path(cache) / "locks"
            locks.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha256(program.encode()).hexdigest()[:16]
            handle = open(locks / f"{name}.lock", "w")  # noqa: SIM115 (closed below)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logging.getLogger(__name__).info(
                    "XLA: another job is compiling this program; waiting to load it"
                )
                fcntl.flock(handle, fcntl.LOCK_EX)
        except (ImportError, OSError):  # no fcntl (Windows), no locks on this file system
            pass
    try:
        yield
    finally:
        if handle is not None:
            handle.close()  # releases the lock


#: jax's monitoring events: a compilation's duration (cache loads included), a persistent-cache hit.
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"
_SAVED_EVENT = "/jax/compilation_cache/compile_time_saved_sec"
#: Compilations (or cache loads) that took, or saved, less than this are counted, not logged.
LOG_MIN_SECONDS = 1.0


class CompileLog:
    """Logs each XLA compilation that matters (one line: compiled, or loaded from the persistent
    cache) and, at the end of the job, how many there were and what they cost in all."""

    def __init__(self, log: logging.Logger, min_seconds: float):
        self.log, self.min_seconds = log, min_seconds
        self.compiled, self.loaded, self.seconds, self.saved = 0, 0, 0.0, 0.0
        self._hit, self._saved = False, 0.0

    def on_event(self, event: str, **_: object) -> None:
        if event == _CACHE_HIT_EVENT:  # fired inside the compilation it belongs to
            self._hit = True

    def on_duration(self, event: str, seconds: float, **kwargs: object) -> None:
        if event == _SAVED_EVENT:  # fired inside the compilation it belongs to, after the hit
            self._saved = max(0.0, seconds)  # negative when loading took longer than compiling
            return
        if event != _COMPILE_EVENT:
            return
        (hit, saved), self._hit, self._saved = (self._hit, self._saved), False, 0.0
        self.loaded += hit
        self.compiled += not hit
        self.seconds += seconds
        self.saved += saved
        name = kwargs.get("fun_name", "?")
        if hit and saved >= self.min_seconds:
            self.log.info(
                "XLA: %s loaded from the compilation cache in %.1f s (saved %.1f s)",
                name,
                seconds,
                saved,
            )
        elif not hit and seconds >= self.min_seconds:
            self.log.info("XLA: %s compiled in %.1f s (cache miss)", name, seconds)

    def summary(self) -> None:
        self.log.info(
            "XLA: %d programs compiled, %d loaded from the cache (%.1f s of compiling saved), "
            "%.1f s in all",
            self.compiled,
            self.loaded,
            self.saved,
            self.seconds,
        )


def log_compilations(log: logging.Logger) -> CompileLog:
    """Log this process's XLA compilations and cache hits to ``log`` (summary at exit)."""
    import atexit

    import jax

    compile_log = CompileLog(log, LOG_MIN_SECONDS)
    jax.monitoring.register_event_listener(compile_log.on_event)
    jax.monitoring.register_event_duration_secs_listener(compile_log.on_duration)
    atexit.register(compile_log.summary)  # runs before logging's own shutdown (LIFO)
    return compile_log


def start_jax_job(
    log_path: str, threads: int, gpu_memory: str | None = AS_NEEDED
) -> logging.Logger:
    """Start a job that runs a network: XLA threads limited to ``threads`` and its GPU memory
    (:func:`set_gpu_memory`) set before jax is imported, the log file (with the device and
    memory settings), the shared compilation cache, and a line per compilation."""
    limit_xla_threads(threads)
    memory = set_gpu_memory(gpu_memory)
    log = start(log_path)
    cache = compilation_cache_dir()
    enable_compilation_cache(cache)
    log_compilations(log)
    log.info("device: %s; GPU memory: %s", describe_device(), memory)
    log.info("XLA compilation cache: %s", cache)
    return log
