"""Session-wide test settings."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def shared_jax_cache(tmp_path_factory):
    """Let every workflow run of the session (local and SLURM jobs) share compiled XLA steps.

    Each training job otherwise compiles the same MobileNetV2 step (15-40 s on 2 cores).
    """
    cache = tmp_path_factory.mktemp("jax-cache")
    old = os.environ.get("GYNMRI_JAX_CACHE")
    os.environ["GYNMRI_JAX_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("GYNMRI_JAX_CACHE", None)
    else:
        os.environ["GYNMRI_JAX_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, shared_jax_cache):
    """The whole workflow on tests/configs/tiny.yaml, run once per session in a temp folder."""
    from test_workflow import ROOT, snakemake

    workdir = tmp_path_factory.mktemp("wf")
    text = (ROOT / "tests" / "configs" / "tiny.yaml").read_text()
    (workdir / "config.yaml").write_text(text)
    snakemake(workdir, "--cores", "2")
    return workdir


def keras_net(num_classes: int, seed: int = 0, **settings):
    """Return a MobileNetV2 with Keras' architecture settings (width 1.0, 3-channel stem, BatchNorm
    momentum 0.999, float32), ``settings`` overriding them."""
    from flax import nnx

    from gynmri.training.model import MobileNetV2

    args = {
        "width": 1.0,
        "in_channels": 3,
        "depthwise": "shifted",
        "bn_momentum": 0.999,
        "dtype": "float32",
        **settings,
    }
    return MobileNetV2(num_classes, **args, rngs=nnx.Rngs(seed))
