"""The start-up of JAX jobs: every compilation is logged, and a second process with the same
program loads it from the persistent compilation cache instead of compiling it again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

JOB = textwrap.dedent(
    """
    import sys
    from gynmri.training import runtime
    runtime.LOG_MIN_SECONDS = 0.0  # log every program, however quick (the real jobs: >= 1 s)
    log = runtime.start_jax_job(sys.argv[1], 1)
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())
    print(float(f(jnp.ones((64, 64)))))
    """
)


def _run(tmp_path, name: str) -> str:
    log = tmp_path / f"{name}.log"
    env = {"GYNMRI_JAX_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", JOB, str(log)], check=True, env=env, cwd=tmp_path)
    return log.read_text()


def test_second_job_loads_the_compiled_program_from_the_cache(tmp_path):
    first = _run(tmp_path, "first")
    second = _run(tmp_path, "second")
    assert "jit(<lambda>) compiled in" in first, first
    assert "loaded from the compilation cache" not in first, first
    assert "XLA compilation cache:" in first
    assert "jit(<lambda>) loaded from the compilation cache" in second, second
    # The summary line counts them.
    assert "0 loaded from the cache" in first and "programs compiled" in first
    assert " 0 loaded from the cache" not in second, second


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gynmri.training import runtime
    log = runtime.start_jax_job(sys.argv[1], 1)
    with runtime.compiling_once(sys.argv[2]):
        Path(sys.argv[3]).write_text(str(time.time()))
        time.sleep(float(sys.argv[4]))
        log.info("left at %r", time.time())
    """
)


def _holder(tmp_path, name: str, program: str, hold: float) -> subprocess.Popen:
    env = {"GYNMRI_JAX_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    args = [str(tmp_path / f"{name}.log"), program, str(tmp_path / f"{name}.in"), str(hold)]
    return subprocess.Popen([sys.executable, "-c", HOLDER, *args], env=env, cwd=tmp_path)


def _wait_for(path, seconds: float = 120) -> None:
    import time

    end = time.time() + seconds
    while not path.exists():
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.1)


def test_jobs_compiling_the_same_program_take_turns_and_others_do_not_wait(tmp_path):
    first = _holder(tmp_path, "first", "step A", hold=8.0)
    _wait_for(tmp_path / "first.in")  # the first job holds step A's lock
    same = _holder(tmp_path, "same", "step A", hold=0.0)
    other = _holder(tmp_path, "other", "step B", hold=0.0)
    for proc in (first, same, other):
        assert proc.wait(timeout=120) == 0
    left = float((tmp_path / "first.log").read_text().split("left at ")[1].split()[0])
    # the job with the same program entered only after the first had left; the other did not wait
    assert float((tmp_path / "same.in").read_text()) >= left
    assert "waiting to load it" in (tmp_path / "same.log").read_text()
    assert float((tmp_path / "other.in").read_text()) < left
    assert "waiting" not in (tmp_path / "other.log").read_text()


@pytest.mark.parametrize(
    "setting,expected",
    [
        ("as-needed", {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}),
        ("0.3", {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.3"}),
    ],
)
def test_a_network_job_sets_its_gpu_memory_before_jax_starts(tmp_path, setting, expected):
    """The job's environment carries the memory setting when jax is imported, and the log says
    which device and memory settings the job ran with."""
    script = textwrap.dedent(
        f"""
        import os, json
        from gynmri.training.runtime import start_jax_job
        start_jax_job({str(tmp_path / "job.log")!r}, 1, {setting!r})
        import jax
        keys = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION")
        print(json.dumps({{k: os.environ[k] for k in keys if k in os.environ}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("XLA_PYTHON_CLIENT")} | {
        "GYNMRI_JAX_CACHE": str(tmp_path / "cache")
    }
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected
    log = (tmp_path / "job.log").read_text()
    assert "device: cpu" in log and "GPU memory: " in log
    with pytest.raises(ValueError, match="as-needed"):
        from gynmri.training.runtime import set_gpu_memory

        set_gpu_memory("1.5")
