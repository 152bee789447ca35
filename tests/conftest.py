"""Session-wide test settings and the workflow runs that several test files inspect."""

import fcntl
import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def shared_jax_cache(tmp_path_factory):
    """Let every workflow run of the session (local and SLURM jobs, on every xdist worker)
    share compiled XLA programs: the first job compiles the MobileNetV2 step (~30 s on 2
    cores), the others load it. The cache starts empty with each session."""
    cache = session_folder(tmp_path_factory) / "jax-cache"
    cache.mkdir(exist_ok=True)
    old = os.environ.get("GYNMRI_JAX_CACHE")
    os.environ["GYNMRI_JAX_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("GYNMRI_JAX_CACHE", None)
    else:
        os.environ["GYNMRI_JAX_CACHE"] = old


def session_folder(tmp_path_factory) -> Path:
    """Return a folder of this test session shared by all its pytest-xdist workers (each
    worker has its own base folder, under one folder of the session)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def finished_run(tmp_path_factory, name: str, config: str) -> Path:
    """Return the folder of a whole workflow run on tests/configs/<config> (or the text of a
    configuration), made once per test session: the first worker that needs it runs it, the
    others wait for it and share it (they only read it or copy it)."""
    from test_workflow import ROOT, snakemake

    workdir = session_folder(tmp_path_factory) / name
    with open(workdir.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (workdir / ".finished").exists():
            shutil.rmtree(workdir, ignore_errors=True)  # a run that failed in another worker
            workdir.mkdir()
            path = ROOT / "tests" / "configs" / config
            text = path.read_text() if config.endswith(".yaml") else config
            (workdir / "config.yaml").write_text(text)
            snakemake(workdir, "--cores", "2")
            (workdir / ".finished").touch()
    return workdir


def rehearsal_cut() -> dict:
    """Return config/rehearsal.yaml with config/rehearsal-cut.yaml on top, merged as Snakemake
    merges several --configfile (the cut of the study's rehearsal that CI runs)."""
    import yaml
    from snakemake.utils import update_config

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config/rehearsal.yaml").read_text())
    update_config(config, yaml.safe_load((root / "config/rehearsal-cut.yaml").read_text()))
    return config


@pytest.fixture(scope="session")
def cut_run(tmp_path_factory, shared_jax_cache):
    """The rehearsal's cut (every rule of the study's path: 10 patients of three hospitals with
    their protocols' gaps, 2 of the 15 sequences, 2 folds, 2000 resamples), once per session."""
    import yaml

    return finished_run(tmp_path_factory, "rehearsal-cut", yaml.safe_dump(rehearsal_cut()))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, shared_jax_cache):
    """The whole workflow on tests/configs/tiny.yaml, run once per session (all workers)."""
    return finished_run(tmp_path_factory, "tiny-run", "tiny.yaml")


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


def pydicom_test_files() -> Path:
    """Return pydicom's own test files (real and deliberately awkward DICOM)."""
    import pydicom

    return Path(pydicom.__file__).parent / "data/test_files"


def copy_pydicom_test_files(tmp_path_factory, name: str) -> Path:
    """Return a fresh copy of pydicom's test files in a folder ``name`` (skip without them)."""
    source = pydicom_test_files()
    if not source.is_dir():
        pytest.skip(f"pydicom's test files not found at {source}")
    folder = tmp_path_factory.mktemp(name) / "files"
    shutil.copytree(source, folder)
    return folder
