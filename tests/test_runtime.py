"""The start-up of JAX jobs: every compilation is logged, and a second process with the same
program loads it from the persistent compilation cache instead of compiling it again."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
