"""The study's path rehearsed end to end: config/rehearsal.yaml (15 sequences x 6 folds, every
rule) from scratch, locally or on the tests' one-node SLURM cluster.

    python bench/study.py                     # locally, --cores 2
    python bench/study.py --slurm             # every job through sbatch (root; slurm-wlm, munge)
    python bench/study.py --keep /tmp/study   # keep the run folder (report: results/report/)
    python bench/study.py --cut [--slurm]     # the cut CI runs: config/rehearsal-cut.yaml on top

Copies this checkout's tracked files to a fresh folder, runs Snakemake with an empty XLA
compilation cache, and prints the jobs, the wall time, the time by rule (bench/profile.py's
table), what the report shows of the 15 sequences (ensembles, missing-sequence counts, best
ensemble per size), and last ``study_seconds: <wall seconds>``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "config/rehearsal.yaml"
#: What CI runs of the rehearsal (2 sequences, 2 folds, 10 patients; tests/test_rehearsal.py).
CUT = "config/rehearsal-cut.yaml"


def _module(name: str, path: Path):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def summary(run: Path) -> None:
    """Print what the rehearsal's report shows of the study's 15 sequences."""
    ens = pd.read_csv(run / "results/metrics/ensembles.tsv", sep="\t")
    seq = pd.read_csv(run / "results/metrics/sequences.tsv", sep="\t")
    pooled = seq[seq["fold"].astype(str) == "all"]
    print(f"\nsequences evaluated: {len(pooled)}; ensembles: {len(ens)} "
          f"({int((ens['n_boot'] > 0).sum())} with bootstrap intervals)")  # fmt: skip
    print(pooled[["sequence", "n", "ss_avg", "auc"]].round(3).to_string(index=False))
    best = ens.loc[~ens["n_sequences"].duplicated()].sort_values("n_sequences")
    cols = ["ensemble", "n_sequences", "n", "patients_missing_a_sequence", "ss_avg", "auc"]
    print("best ensemble of each size:\n" + best[cols].round(3).to_string(index=False))
    html = (run / "results/report/index.html").read_text()
    print(f"report: {len(html):,} bytes, {html.count('<img')} figures")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--slurm", action="store_true", help="submit every job to a test SLURM cluster")
    p.add_argument("--cut", action="store_true", help=f"the cut CI runs ({CUT} on top)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = p.parse_args()
    profile = _module("bench_profile", ROOT / "bench" / "profile.py")
    pd.set_option("display.width", 160)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.keep or Path(tmp) / "run"
        run.mkdir(parents=True, exist_ok=True)
        profile._copy_checkout(run)
        cluster, extra, env = None, [], None
        if args.slurm:
            sys.path.insert(0, str(ROOT / "tests"))
            from slurm_cluster import MISSING, SlurmCluster, snakemake_arguments

            if MISSING:
                sys.exit(
                    f"no SLURM here ({', '.join(MISSING)} missing): apt-get install slurm-wlm munge"
                )
            cluster = SlurmCluster(Path(tmp) / "slurm")
            cluster.start()
            extra, env = snakemake_arguments(), cluster.env
        try:
            configs = f"{CONFIG} {CUT}" if args.cut else CONFIG
            wall, snakemake_cpu = profile.run_demo(run, configs, args.cores, extra, env)
        finally:
            if cluster is not None:
                cluster.stop()
        table = profile.table(run)
        print(f"jobs: {int(table.loc['all jobs', 'jobs'])}; wall {wall:.0f} s "
              f"({'SLURM' if args.slurm else f'{args.cores} cores'})")  # fmt: skip
        print(table.round(1).to_string())
        print(f"snakemake process CPU: {snakemake_cpu:.1f} s")
        summary(run)
        print(f"study_seconds: {wall:.1f}")


if __name__ == "__main__":
    main()
