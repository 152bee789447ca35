"""The workflow on a real one-node SLURM cluster: jobs go through sbatch, outputs match a local run.

The local run is the session's run of the rehearsal's cut (config/rehearsal.yaml with
config/rehearsal-cut.yaml on top: the study's path with the hospitals' missing sequences); a copy
of it retrains one classifier through sbatch (``--forcerun`` on its model: the training, its
predictions and everything after them, about a dozen SLURM jobs), and the retrained model must
predict what the local one did. ``python bench/study.py --cut --slurm`` runs the whole cut through
sbatch (with 3 sequences and 12 patients: 409 s here, against 192 s locally; SLURM's status
polling, not the jobs' work, sets the pace).
"""

import os
import re
import shutil

import pandas as pd
import pytest
from slurm_cluster import MISSING, SlurmCluster, snakemake_arguments
from test_workflow import snakemake

pytestmark = pytest.mark.workflow

RETRAINED = "results/models/DWIsag/fold1/model"  # a sequence one hospital lacks, one fold


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


def test_trainings_through_sbatch_match_the_local_run(cluster, cut_run, tmp_path, capsys):
    remote = tmp_path / "slurm"
    shutil.copytree(cut_run, remote, symlinks=True)  # keeps mtimes and .snakemake metadata
    proc = snakemake(remote, *snakemake_arguments(), "--forcerun", RETRAINED, env=cluster.env)
    out = proc.stdout + proc.stderr
    submitted = re.findall(r"SLURM jobid (\d+)", out)
    with capsys.disabled():  # into the CI log even when the test passes
        print(f"\nSLURM job ids submitted by Snakemake: {' '.join(submitted)}")
    ran = set(re.findall(r"^rule (\w+):", out, re.M)) | set(
        re.findall(r"^localrule (\w+):", out, re.M)
    )
    assert {"train", "predict", "predict_auto", "evaluate", "readers", "report_html"} <= ran
    assert len(submitted) >= 10, out[-3000:]
    ctld = (cluster.root / "log" / "slurmctld.log").read_text()
    allocated = set(re.findall(r"JobId=(\d+)", ctld))
    assert set(submitted) <= allocated  # every job Snakemake reported was scheduled by slurmctld
    # the retrained model predicts what the local run's did; the other models are not remade
    predictions = sorted(cut_run.glob("results/models/*/fold*/predictions.parquet"))
    assert len(predictions) == 4
    for local in predictions:
        again = remote / local.relative_to(cut_run)
        remade = again.stat().st_mtime > local.stat().st_mtime
        assert remade == (local.parent == (cut_run / RETRAINED).parent), local
        pd.testing.assert_frame_equal(pd.read_parquet(local), pd.read_parquet(again), atol=1e-5)
    for table in ("results/metrics/sequences.tsv", "results/metrics/ensembles.tsv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(cut_run / table, sep="\t"), pd.read_csv(remote / table, sep="\t")
        )
    assert (remote / "results/report/index.html").stat().st_size > 10_000
