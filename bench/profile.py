"""Where a whole demo run's time goes: per rule, start-up, compilation, training, prediction.

    python bench/profile.py [--configfile config/config.yaml] [--cores 2] [--keep DIR]
    python bench/profile.py --parse RUN_DIR      # a finished run's logs and benchmarks only

Runs the README's main command on a fresh copy of this checkout's tracked files, with an empty
XLA compilation cache (as a newcomer's first run), sampling the Snakemake process's own CPU
time. Then reads every job's log (``results/logs/<rule>/...``) and benchmark file and prints,
per rule: jobs, wall seconds summed over jobs, and how they split into start-up (interpreter and
imports), XLA compilation (or cache loads), training epochs, checkpoints, prediction, writing
and the rest, and the largest peak memory of a job of the rule (MB). Logs of runs before these lines existed are estimated (job wall
from Snakemake's log; compilation = first epoch minus the median later epoch).
Last line: ``demo_seconds: <wall seconds of the snakemake command>``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = {
    "startup": re.compile(r"job started ([\d.]+) s after its process"),
    "total": re.compile(r"job finished ([\d.]+) s after its process"),
    "peak_mb": re.compile(r"job finished .* \(peak memory ([\d.]+) MB\)"),
    "compile": re.compile(r"XLA: \d+ programs compiled, .* ([\d.]+) s in all"),
    "training": re.compile(r"training: ([\d.]+) s \(of which checkpoints"),
    "checkpoints": re.compile(r"of which checkpoints ([\d.]+) s\)"),
    "prediction": re.compile(r"prediction: ([\d.]+) s"),
    "writing": re.compile(r"writing the model: ([\d.]+) s"),
}
RULE_LINE = re.compile(r"^(?:local)?rule (\w+):$")
FINISHED = re.compile(r"^Finished jobid: (\d+)")
EPOCH = re.compile(r"epoch (\d+)/\d+ .* ([\d.]+)s [\d.]+ img/s")
PHASES = ["startup", "compile", "training", "checkpoints", "prediction", "writing"]


def _jobs(run: Path) -> list[dict]:
    """Return the jobs of the run's latest Snakemake log: rule, log file, start, end."""
    logs = sorted((run / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        sys.exit(f"no Snakemake log in {run / '.snakemake' / 'log'}")
    jobs: dict[str, dict] = {}
    stamp, current = None, None
    for line in logs[-1].read_text().splitlines():
        if line.startswith("[") and line.endswith("]"):
            stamp = datetime.strptime(line[1:-1], "%a %b %d %H:%M:%S %Y")
        elif rule := RULE_LINE.match(line):
            current = {"rule": rule.group(1), "start": stamp, "log": None}
        elif current is not None and line.startswith("    log: "):
            current["log"] = line.split(": ", 1)[1].split(",")[0].strip()
        elif current is not None and line.startswith("    jobid: "):
            jobs[line.split(": ", 1)[1].strip()] = current
        elif done := FINISHED.match(line):
            if done.group(1) in jobs:
                jobs[done.group(1)]["end"] = stamp
    return [j for j in jobs.values() if "end" in j]


def _phases(text: str) -> dict:
    """Return the phases a job's log reports (seconds), estimated for logs of older code."""
    row: dict = {}
    for key, pattern in PATTERNS.items():
        found = pattern.findall(text)
        row[key] = sum(map(float, found)) if found else None
    epochs = [float(s) for _, s in EPOCH.findall(text)]
    if row["training"] is None and epochs:
        row["training"] = sum(epochs)
    if row["compile"] is None and len(epochs) > 1:
        row["compile"] = max(0.0, epochs[0] - float(pd.Series(epochs[1:]).median()))
    if row["training"] is not None and row["compile"] is not None and epochs:
        # compilation happens inside the first epoch: report it once
        row["training"] = max(0.0, row["training"] - min(row["compile"], epochs[0]))
    return row


def table(run: Path) -> pd.DataFrame:
    """Return the per-rule table of a finished run in ``run`` (Snakemake's log, job logs)."""
    rows = []
    for job in _jobs(run):
        log = run / job["log"] if job["log"] else None
        text = log.read_text(errors="replace") if log and log.exists() else ""
        row = {"rule": job["rule"], **_phases(text)}
        # the job's own account when it has one; else Snakemake's (1 s resolution)
        row["wall"] = row["total"] or (job["end"] - job["start"]).total_seconds()
        rows.append(row)
    rows = pd.DataFrame(rows)
    rows[PHASES + ["wall"]] = rows[PHASES + ["wall"]].astype(float)
    out = rows.groupby("rule").agg(jobs=("rule", "size"), wall=("wall", "sum"))
    for phase in PHASES:
        out[phase] = rows.groupby("rule")[phase].sum(min_count=1)
    out["other"] = out["wall"] - out[PHASES].fillna(0).sum(axis=1)
    out["peak_mb"] = rows.groupby("rule")["peak_mb"].max()  # the largest job of the rule
    out = out.sort_values("wall", ascending=False)
    out.loc["all jobs"] = out.sum(numeric_only=True)
    out.loc["all jobs", "peak_mb"] = out["peak_mb"].iloc[:-1].max()
    return out


def _copy_checkout(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src, dst = ROOT / name.decode(), dest / name.decode()
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
            dst.chmod(src.stat().st_mode)


def run_demo(
    run: Path, configfile: str | None, cores: int, extra: list[str] = (), env: dict | None = None
) -> tuple[float, float]:
    """Run snakemake in ``run`` (``extra``: more arguments, ``env``: its environment); return
    (wall seconds, CPU seconds of the snakemake process)."""
    env = {**(env or os.environ), "GYNMRI_JAX_CACHE": str(run / ".cache" / "jax")}
    # the copy's own package, not the editable install's source: edits made in the checkout
    # while the run goes on must not reach its jobs
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(run / "src"), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), *extra]
    if configfile:  # one file, or several (space-separated) that Snakemake merges in order
        cmd += ["--configfile", *configfile.split()]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=run, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cpu = [0.0]

    def sample() -> None:  # the process's own CPU (not its jobs'), until it exits
        handle = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                times = handle.cpu_times()
                cpu[0] = times.user + times.system
            except psutil.Error:
                break
            time.sleep(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.stdout.read().decode(errors="replace")
    proc.wait()
    wall = time.perf_counter() - start
    sampler.join()
    (run / "snakemake.out").write_text(output)
    if proc.returncode:
        sys.exit(f"snakemake failed ({proc.returncode}); see {run / 'snakemake.out'}")
    return wall, cpu[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parse", type=Path, help="only read the logs of a finished run there")
    parser.add_argument("--configfile")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()
    pd.set_option("display.width", 160)
    if args.parse:
        print(table(args.parse).round(1).to_string())
        return
    with tempfile.TemporaryDirectory() as tmp:
        run = args.keep or Path(tmp) / "run"
        run.mkdir(parents=True, exist_ok=True)
        _copy_checkout(run)
        wall, snakemake_cpu = run_demo(run, args.configfile, args.cores)
        print(table(run).round(1).to_string())
        print(
            f"snakemake process CPU: {snakemake_cpu:.1f} s ({100 * snakemake_cpu / wall:.0f} % of a core)"
        )
        print(f"demo_seconds: {wall:.1f}")


if __name__ == "__main__":
    main()
