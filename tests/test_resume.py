"""fit(checkpoint_dir=...): a killed run resumes from its last epoch and ends with the same weights.

The interrupted run really dies: a subprocess's ``on_epoch_end`` callback SIGKILLs its own
process right after epoch 1's checkpoint is on disk, as a scheduler kills a job. The uninterrupted run (in
this process, meanwhile) and the resumed one then share one compiled training step.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gynmri.training.checkpoints import Checkpoints, run_fingerprint
from gynmri.training.loop import fit
from gynmri.training.sampler import BatchSampler, augment_draws
from gynmri.training.weights import flat_state

SETUP = """
import numpy as np
rng = np.random.default_rng(0)
labels = np.arange(24) % 3
images = rng.standard_normal((24, 32, 32)).astype(np.float32) + labels[:, None, None]
model_cfg = {"width": 0.35, "stem": "single", "bn_momentum": 0.9}
train_cfg = {"batch_size": 8, "epochs": 3, "images_per_epoch": 16, "learning_rate": 1e-3,
             "seed": 3, "images_per_class": 50, "checkpoint_seconds": 0,
             "augment": {"contrast": 0.1, "intensity": 0.1}}
"""

# The interrupted run: a subprocess that SIGKILLs itself after epoch 1's checkpoint.
SCRIPT = (
    SETUP
    + """
import os, signal, sys
from gynmri.training.loop import fit

def kill_after_epoch_1(epoch):
    if epoch == 1:
        os.kill(os.getpid(), signal.SIGKILL)

fit(images, labels, 3, model_cfg, train_cfg, log=lambda m: print(m, flush=True),
    checkpoint_dir=sys.argv[1], on_epoch_end=kill_after_epoch_1)
print("NOT KILLED", flush=True)
"""
)


def test_killed_run_resumes_and_matches_uninterrupted(tmp_path):
    setup: dict = {}
    exec(SETUP, setup)
    data = (setup["images"], setup["labels"], 3, setup["model_cfg"], setup["train_cfg"])
    ckpt = tmp_path / "ckpt"
    # Same environment (XLA flags included) as this process, so both compile the same program.
    killed = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(ckpt)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )
    # Meanwhile (on the other core), the same run uninterrupted; its checkpoints are due only
    # after an hour (train/checkpoint_seconds), so it saves none.
    lazy = {**setup["train_cfg"], "checkpoint_seconds": 3600}
    plain, plain_history = fit(*data[:4], lazy, log=lambda _: None, checkpoint_dir=tmp_path / "p")
    assert not [p for p in (tmp_path / "p").iterdir() if p.name.isdigit()]
    out, _ = killed.communicate(timeout=600)
    assert killed.returncode == -9, out  # SIGKILL right after epoch 1's checkpoint
    assert "epoch 1/3" in out and "epoch 2/3" not in out and "NOT KILLED" not in out, out

    lines: list[str] = []
    resumed, history = fit(*data, log=lines.append, checkpoint_dir=ckpt)
    assert lines[0].startswith("resumed from checkpoint"), lines
    assert "after epoch 1 (step 2); continuing with epoch 2/3" in lines[0], lines
    epochs = [line.split()[1] for line in lines[1:] if line.startswith("epoch")]
    assert epochs == ["2/3", "3/3"]  # epoch 1 not retrained
    assert history["epoch"].tolist() == plain_history["epoch"].tolist() == [1, 2, 3]
    # Epoch 1's row comes from the checkpoint (the killed run), the others from this run.
    np.testing.assert_allclose(history["train_loss"], plain_history["train_loss"], rtol=1e-6)
    a, b = flat_state(resumed), flat_state(plain)
    assert sorted(a) == sorted(b) and len(a) > 100
    for k in a:
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-6, atol=1e-7)


def _tiny_state() -> tuple[nnx.Linear, nnx.State]:
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    return model, nnx.state(model)


def test_checkpoint_of_another_run_is_ignored(tmp_path):
    data = np.zeros((4, 8, 8), np.float32)
    labels = np.array([0, 1, 0, 1])
    fp = run_fingerprint(2, {"width": 0.35}, {"seed": 0, "threads": 1}, data, labels)
    # "threads" does not change the result; the seed, the model and the data do.
    assert fp == run_fingerprint(2, {"width": 0.35}, {"seed": 0, "threads": 2}, data, labels)
    other = run_fingerprint(2, {"width": 0.35}, {"seed": 1}, data, labels)
    assert other != fp
    assert run_fingerprint(2, {"width": 0.35}, {"seed": 0}, data + 1, labels) != fp

    key = jax.random.key(5)
    _, state = _tiny_state()
    lines: list[str] = []
    saver = Checkpoints(tmp_path / "c", fp, lines.append)
    rows = [(1, 0.5, float("nan"), float("nan"), 1.0, 10.0)]
    saver.save(1, state, key, rows, 4)
    saver.close()

    _, fresh = _tiny_state()
    fresh["kernel"].set_value(jnp.zeros_like(fresh["kernel"].get_value()))
    got = Checkpoints(tmp_path / "c", fp, lines.append).restore(fresh, jax.random.key(9))
    assert got is not None
    restored, restored_key, restored_rows, step = got
    np.testing.assert_array_equal(restored["kernel"].get_value(), state["kernel"].get_value())
    assert step == 4 and restored_rows[0][0] == 1 and np.isnan(restored_rows[0][2])
    np.testing.assert_array_equal(jax.random.key_data(restored_key), jax.random.key_data(key))

    mismatch = Checkpoints(tmp_path / "c", other, lines.append)
    assert mismatch.restore(_tiny_state()[1], key) is None
    assert any(line.startswith("ignoring checkpoint") for line in lines), lines
    mismatch.close()
    # The foreign checkpoint is gone: the next run with the first fingerprint starts afresh too.
    assert Checkpoints(tmp_path / "c", fp, lines.append).restore(_tiny_state()[1], key) is None


def test_pool_draws_are_fixed_images():
    # images_per_class=3, 2 classes: however many batches, at most 6 distinct augmented images,
    # and each pool item is the same image with the same augmentation wherever it is drawn.
    images = np.asarray(jax.random.normal(jax.random.key(0), (4, 12, 12)))
    sampler = BatchSampler(images, np.array([0, 1, 0, 1]), 2, 16, pool=3)
    aug = (("contrast", 0.5), ("flip_lr", True), ("rotate_deg", 20))
    augment = jax.jit(lambda k, x, c, d: augment_draws(k, x, c, d, aug, 3, jax.random.key(1)))

    seen: set[bytes] = set()
    for i in range(10):
        x, cls, d = sampler.batch((0,), i)
        x = augment(jax.random.key(i), x, cls, d)
        seen.update(np.asarray(x[j]).round(5).tobytes() for j in range(16))
        assert set(np.asarray(cls).tolist()) <= {0, 1}
    assert 3 < len(seen) <= 6
