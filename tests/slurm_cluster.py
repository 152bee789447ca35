"""A real one-node SLURM cluster (Debian's slurm-wlm + munge) for tests, torn down by PID.

See ../shared/docs/slurm.md. Needs root, `slurmctld`, `slurmd`, `munged` on PATH (CI installs
them with apt-get). Used by tests/test_slurm.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

MISSING = [tool for tool in ("slurmctld", "slurmd", "munged", "sbatch") if not shutil.which(tool)]


def _wait(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


def _ok(cmd: list[str], env: dict | None = None) -> bool:
    return subprocess.run(cmd, capture_output=True, env=env, timeout=30).returncode == 0


CLUSTER_NAME = "gynmri"


class SlurmCluster:
    """Start munge, slurmctld and slurmd on this host with a config under ``root``."""

    # The default location: `srun` inside batch jobs finds it without SLURM_CONF in their env.
    CONF = Path("/etc/slurm/slurm.conf")

    def __init__(self, root: Path):
        self.root = root
        self.conf = self.CONF
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.pids: list[Path] = []
        saved = self.conf.read_text() if self.conf.exists() else None
        # A config left by a killed test session (its controller is gone) is not restored: with
        # it, every snakemake command waits ~10 s for the SLURM plugin's `scontrol show config`.
        leftover = saved is not None and saved.startswith(f"ClusterName={CLUSTER_NAME}\n")
        self._saved_conf = None if leftover else saved

    def start(self) -> None:
        """Bring the cluster up; raise RuntimeError with the daemons' logs when it fails."""
        self._munge()
        host = socket.gethostname().split(".")[0]
        mem_mb = int(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 * 0.9)
        for sub in ("state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(f"""ClusterName={CLUSTER_NAME}
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=300
ReturnToService=2
StateSaveLocation={self.root}/state
SlurmdSpoolDir={self.root}/spool
SlurmctldPidFile={self.root}/slurmctld.pid
SlurmdPidFile={self.root}/slurmd.pid
SlurmctldLogFile={self.root}/log/slurmctld.log
SlurmdLogFile={self.root}/log/slurmd.log
NodeName={host} CPUs={os.cpu_count()} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
""")
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run(
                [f"/usr/sbin/{daemon}", "-f", str(self.conf)], check=True, env=self.env, timeout=60
            )
            self.pids.append(self.root / f"{daemon}.pid")
        try:
            _wait(
                lambda: (
                    subprocess.run(
                        ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env
                    ).stdout.strip()
                    == "idle"
                ),
                60,
                "an idle node",
            )
        except RuntimeError:
            logs = "".join(
                (self.root / "log" / f).read_text()[-2000:]
                for f in ("slurmctld.log", "slurmd.log")
                if (self.root / "log" / f).exists()
            )
            self.stop()
            raise RuntimeError(f"SLURM did not come up:\n{logs}") from None

    def _munge(self) -> None:
        if _ok(["bash", "-c", "munge -n | unmunge"]):
            return  # a munged is already serving this host
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "-c"], check=True)
        subprocess.run(
            ["install", "-d", "-o", "munge", "-g", "munge", "-m", "755", "/run/munge"], check=True
        )
        subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
        self.pids.append(Path("/run/munge/munged.pid"))
        _wait(lambda: _ok(["bash", "-c", "munge -n | unmunge"]), 20, "munge")

    def stop(self) -> None:
        """Stop every daemon this cluster started, by the PID in its pid file, and wait for it."""
        for pid_file in reversed(self.pids):
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                continue
            try:
                _wait(lambda p=pid: not Path(f"/proc/{p}").exists(), 20, f"pid {pid} to exit")
            except RuntimeError:
                os.kill(pid, signal.SIGKILL)
        self.pids.clear()
        if self._saved_conf is not None:
            self.conf.write_text(self._saved_conf)
        elif self.conf.exists():
            self.conf.unlink()


def snakemake_arguments(jobs: int = 8) -> list[str]:
    """Return the snakemake arguments that send every job to this cluster's ``debug``
    partition (no accounting: job states from squeue; short status intervals). The partition lets up to 4 jobs share a core
    (OverSubscribe=FORCE:4): jobs of a few seconds then run side by side instead of one per
    core and status check (SLURM's polling, not their work, would set the pace)."""
    return [
        "--executor",
        "slurm",
        "--jobs",
        str(jobs),
        "--default-resources",
        "slurm_partition=debug",
        "slurm_account=none",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "2",
    ]
