"""Planning speed at study scale: `snakemake -n` on 263 patients x 15 sequences x 6 folds.

Builds a header-free cohort in a temp folder (a cases table and empty patient folders: planning
must not read DICOM), runs a dry run of the real workflow, and prints the time it took.
Last line: ``plan_seconds: <number>``.

    python bench/plan.py [--patients-per-class sarcoma=63 myoma=200] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from gynmri.synth import SEQUENCES as SYNTH_SEQUENCES

ROOT = Path(__file__).resolve().parents[1]
SEQUENCES = list(SYNTH_SEQUENCES)  # the 15 canonical names, as config/paper.yaml uses them


def make_cohort(workdir: Path, per_class: dict[str, int]) -> Path:
    """Write the cases table, empty patient folders and a study-scale config; return the config."""
    rows = ["patient_dir\tcenter\tlabel"]
    n = 0
    for label, count in per_class.items():
        for _ in range(count):
            center = f"center_{'abc'[n % 3]}"
            folder = f"{center}/case{n:04d}"
            (workdir / "dicom" / folder).mkdir(parents=True)
            rows.append(f"{folder}\t{center}\t{label}")
            n += 1
    (workdir / "cases.tsv").write_text("\n".join(rows) + "\n")
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())  # the full protocol
    config["task"]["classes"] = list(per_class)
    config["task"]["positive"] = [list(per_class)[0]]
    config["cohort"] = {"cases": "cases.tsv", "dicom_root": "dicom", "masks_root": "masks"}
    assert config["sequences"]["use"] == SEQUENCES and config["folds"]["k"] == 6
    config["folds"]["lock"] = "folds.lock.tsv"
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def dry_run(workdir: Path, config: Path, extra: list[str] = ()) -> tuple[float, str, int]:
    """Return (seconds, output, exit status) of one dry run of the workflow (``extra``: more
    snakemake arguments, e.g. a profile)."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(config),
        "--cores",
        "2",
        *extra,
    ]
    t0 = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "GYNMRI_KEY": "bench"}
    )
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    dry_run.cpu_seconds = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    return time.perf_counter() - t0, proc.stdout + proc.stderr, proc.returncode


def scontrol_seconds() -> float | None:
    """Seconds `scontrol show config` takes here (None without SLURM's client tools).

    The SLURM executor plugin runs it when Snakemake builds its command line, so every snakemake
    command pays it; with a SLURM config whose controller does not answer (a stopped test
    cluster, a workstation's stale /etc/slurm/slurm.conf) scontrol retries for about 10 s."""
    if shutil.which("scontrol") is None:
        return None
    t0 = time.perf_counter()
    try:
        subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        pass
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients-per-class", nargs="+", default=["sarcoma=63", "myoma=200"])
    parser.add_argument("--repeat", type=int, default=2, help="dry runs to time (best is printed)")
    args = parser.parse_args()
    per_class = {k: int(v) for k, v in (item.split("=") for item in args.patients_per_class)}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        config = make_cohort(workdir, per_class)
        times, cpu, out = [], [], ""
        for _ in range(args.repeat):
            seconds, out, status = dry_run(workdir, config)
            times.append(seconds)
            cpu.append(dry_run.cpu_seconds)
            if status != 0:
                print(out[-3000:], file=sys.stderr)
                return 1
        jobs = re.search(r"^total\s+(\d+)", out, re.M)
        print(f"patients: {sum(per_class.values())}, sequences: {len(SEQUENCES)}, folds: 6")
        print(f"jobs planned: {jobs.group(1) if jobs else '?'}")
        print(f"dry-run seconds: {', '.join(f'{t:.2f}' for t in times)}")
        # CPU time is what a busy machine does not inflate (wall time is the figure users see)
        print(f"dry-run CPU seconds: {', '.join(f'{t:.2f}' for t in cpu)}")
        waited = scontrol_seconds()
        if waited is not None and waited > 1:
            print(
                f"note: `scontrol show config` takes {waited:.1f} s here and every snakemake "
                "command waits for it (SLURM plugin at start-up; an unreachable controller)"
            )
        print(f"plan_seconds: {min(times):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
