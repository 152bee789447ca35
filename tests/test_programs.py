"""Programs traced once for all jobs (training/programs.SharedProgram): the exported program
computes what the jitted function does, a later job loads it instead of tracing, and anything
the trace depends on (shapes, the description, the package's source) names another program."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from gynmri.training import programs
from gynmri.training.programs import SharedProgram


@pytest.fixture
def cache(tmp_path):
    """A persistent compilation cache for this test only (the process's setting restored)."""
    old = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(tmp_path))
    yield tmp_path
    jax.config.update("jax_compilation_cache_dir", old)


def _flat_step(traces: list):
    """An nnx model and AdamW step on flat leaves, as SharedTrainStep builds it; ``traces``
    counts how often its Python body runs (once per trace)."""
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adamw(0.1), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    treedef = jax.tree.structure(state)

    def train_step(leaves, key, x):  # noqa: ANN001, ANN202
        traces.append(1)
        m, opt = nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))
        noise = jax.random.normal(jax.random.wrap_key_data(key), x.shape)

        def loss_fn(m):  # noqa: ANN001, ANN202
            return jnp.mean(m(x + 0.1 * noise) ** 2)

        loss, grads = nnx.value_and_grad(loss_fn)(m)
        opt.update(m, grads)
        return jax.tree.leaves(nnx.state((m, opt))), loss

    leaves = jax.device_put(jax.tree.leaves(state), jax.devices()[0])
    return train_step, programs.describe_structure(graphdef), leaves


def _run(step, leaves, steps: int = 3):
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    losses = []
    for k in range(steps):
        leaves, loss = step(leaves, jax.random.key_data(jax.random.key(k)), x)
        losses.append(float(loss))
    return losses, [np.asarray(a) for a in leaves]


def test_a_later_job_loads_the_traced_program_and_gets_the_same_result(cache, caplog):
    plain, _, plain_leaves = _flat_step([])
    reference = _run(jax.jit(plain, donate_argnums=(0,)), plain_leaves)
    traces: list = []
    fn, description, leaves = _flat_step(traces)
    with caplog.at_level(logging.INFO, logger=programs.__name__):
        first = _run(SharedProgram(fn, description, donate_argnums=(0,)), leaves)
        assert len(traces) == 1 and "traced and exported" in caplog.text
        files = list((cache / programs.EXPORTED).glob("train_step-*.jaxexport"))
        assert len(files) == 1
        caplog.clear()
        # a later job: a new program object, the same function, traced in no Python
        fn2, description2, leaves2 = _flat_step(traces)
        assert description2 == description  # stable from one build to the next
        again = _run(SharedProgram(fn2, description2, donate_argnums=(0,)), leaves2)
        assert len(traces) == 1 and "traced program loaded" in caplog.text
    for got in (first, again):
        assert got[0] == pytest.approx(reference[0], rel=1e-6)
        for a, b in zip(got[1], reference[1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert reference[0][0] != reference[0][-1]  # the steps trained something


def test_what_the_trace_depends_on_names_another_program(cache, monkeypatch):
    fn, description, leaves = _flat_step([])
    x = np.zeros((4, 3), np.float32)
    key = jax.random.key_data(jax.random.key(0))
    program = SharedProgram(fn, description)
    base = program.key((leaves, key, x))
    assert base == SharedProgram(fn, description).key((leaves, key, x))
    assert base != program.key((leaves, key, np.zeros((8, 3), np.float32)))  # shape
    assert base != program.key((leaves, key, x.astype(np.float64)))  # dtype
    assert base != SharedProgram(fn, description + " other").key((leaves, key, x))
    monkeypatch.setattr(programs, "code_fingerprint", lambda: "edited source")
    assert base != program.key((leaves, key, x))  # a changed package traces again


def test_an_unreadable_export_is_traced_again(cache, caplog):
    traces: list = []
    fn, description, leaves = _flat_step(traces)
    program = SharedProgram(fn, description, donate_argnums=(0,))
    key = jax.random.key_data(jax.random.key(0))
    x = np.zeros((4, 3), np.float32)
    path = cache / programs.EXPORTED / f"{program.key((leaves, key, x))}.jaxexport"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    with caplog.at_level(logging.INFO, logger=programs.__name__):
        program(leaves, key, x)
    assert "unreadable export" in caplog.text and len(traces) == 1
    assert path.stat().st_size > 1000  # replaced by a whole export


def test_without_a_persistent_cache_the_function_is_only_jitted(tmp_path):
    assert not jax.config.jax_compilation_cache_dir
    traces: list = []
    fn, description, leaves = _flat_step(traces)
    _run(SharedProgram(fn, description, donate_argnums=(0,)), leaves)
    assert len(traces) == 1 and not any(tmp_path.iterdir())
