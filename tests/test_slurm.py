"""The workflow on a real one-node SLURM cluster: jobs go through sbatch, outputs match a local run."""

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from slurm_cluster import MISSING, SlurmCluster
from test_workflow import snakemake

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow

CONFIG = """
task: {name: slurm-tiny, classes: [myoma, sarcoma], positive: [sarcoma]}
cohort:
  cases: data/synthetic/cases.tsv
  dicom_root: data/synthetic/dicom
  masks_root: data/synthetic/masks
  synthetic: {patients_per_class: {myoma: 3, sarcoma: 3}, centers: 3, seed: 21}
sequences: {use: [T2axi], rules: config/sequences.yaml}
harmonize: {size: 32, fov_mm: 140}
folds: {k: 2, seed: 1}
model: {width: 0.35, stem: single, bn_momentum: 0.9}
train: {batch_size: 16, epochs: 1, images_per_epoch: 32, learning_rate: 0.002}
evaluate: {}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if MISSING:
        pytest.skip(
            f"no SLURM here ({', '.join(MISSING)} missing): apt-get install slurm-wlm munge"
        )
    if os.geteuid() != 0:
        pytest.skip("the test cluster runs slurmd as root")
    slurm = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    slurm.start()
    yield slurm
    slurm.stop()


def test_workflow_through_sbatch_matches_local_run(cluster, tmp_path, capsys):
    local, remote = tmp_path / "local", tmp_path / "slurm"
    for work in (local, remote):
        work.mkdir()
        (work / "config.yaml").write_text(CONFIG)
    snakemake(local, "--cores", "2")
    proc = snakemake(
        remote,
        "--executor",
        "slurm",
        "--jobs",
        "4",
        "--default-resources",
        "slurm_partition=debug",
        "slurm_account=none",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "2",
        env=cluster.env,
    )
    out = proc.stdout + proc.stderr
    job_ids = re.findall(r"SLURM run ID: .*|Job \d+ has been submitted with SLURM jobid (\d+)", out)
    submitted = re.findall(r"SLURM jobid (\d+)", out)
    with capsys.disabled():  # into the CI log even when the test passes
        print(f"\nSLURM job ids submitted by Snakemake: {' '.join(submitted)}")
    assert job_ids and len(submitted) >= 10, out[-3000:]
    ctld = (cluster.root / "log" / "slurmctld.log").read_text()
    allocated = set(re.findall(r"JobId=(\d+)", ctld))
    assert set(submitted) <= allocated  # every job Snakemake reported was scheduled by slurmctld
    # outputs agree with the local run
    for table in (
        "results/splits/folds.tsv",
        "results/qc/files.tsv",
        "results/metrics/sequences.tsv",
    ):
        pd.testing.assert_frame_equal(
            pd.read_csv(local / table, sep="\t"), pd.read_csv(remote / table, sep="\t")
        )
    for fold in (0, 1):
        path = f"results/models/T2axi/fold{fold}/predictions.parquet"
        pd.testing.assert_frame_equal(
            pd.read_parquet(local / path), pd.read_parquet(remote / path), atol=1e-5
        )
    assert (remote / "results/report/index.html").stat().st_size > 10_000
