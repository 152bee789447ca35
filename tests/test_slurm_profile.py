"""profiles/slurm with the study's config: every job that requests a GPU goes to the GPU
partition, and no job on the CPU partition requests one (a dry run prints each job's resources)."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_plan", ROOT / "bench" / "plan.py")
plan = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plan)

#: The rules that run a network (training, prediction, automatic selection, Grad-CAM).
NETWORK_RULES = {"train", "train_detector", "predict", "predict_auto", "gradcam_figure"}


def job_resources(output: str) -> list[tuple[str, dict[str, str]]]:
    """Return (rule, resources) of every job in a dry run's output."""
    jobs = []
    for block in re.split(r"\n(?=\[.*\d{4}\]\n)", output):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        if rule and resources:
            pairs = (item.split("=", 1) for item in resources.group(1).split(", "))
            jobs.append((rule.group(1), dict(pairs)))
    return jobs


def test_gpu_jobs_go_to_the_gpu_partition_and_cpu_jobs_request_none(tmp_path):
    config = plan.make_cohort(tmp_path, {"sarcoma": 6, "myoma": 6})  # empty folders: no DICOM
    args = ["--profile", str(ROOT / "profiles" / "slurm")]
    seconds, out, status = plan.dry_run(tmp_path, config, args)
    assert status == 0, out[-3000:]
    jobs = job_resources(out)
    assert {rule for rule, _ in jobs} >= NETWORK_RULES | {"ingest", "evaluate"}, out[-2000:]
    for rule, resources in jobs:
        gpus = int(resources.get("gpu", 0))
        partition = resources["slurm_partition"]
        assert (gpus > 0) == (partition == "gpu"), (rule, resources)
        assert (rule in NETWORK_RULES) == (gpus > 0), (rule, resources)
