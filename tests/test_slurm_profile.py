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


def test_gpu_profile_plans_the_study_and_caps_network_jobs(tmp_path):
    """profiles/gpu: the study plans with it; every network job requests one "gpu" unit of the
    profile's cap and says how it takes GPU memory; no other job requests a GPU."""
    import yaml

    profile = yaml.safe_load((ROOT / "profiles" / "gpu" / "config.yaml").read_text())
    cap = dict(item.split("=") for item in profile["resources"])
    assert int(cap["gpu"]) >= 2  # several jobs share one GPU
    config = plan.make_cohort(tmp_path, {"sarcoma": 6, "myoma": 6})
    seconds, out, status = plan.dry_run(tmp_path, config, ["--profile", str(ROOT / "profiles/gpu")])
    assert status == 0, out[-3000:]
    jobs = job_resources(out)
    assert {rule for rule, _ in jobs} >= NETWORK_RULES
    for rule, resources in jobs:
        if rule in NETWORK_RULES:
            assert resources["gpu"] == "1" and resources["gpu_memory"] == "as-needed", resources
        else:
            assert int(resources.get("gpu", 0)) == 0, (rule, resources)


def test_paper_study_hours_follow_its_budgets():
    """bench/gpu_check.py's prediction of the study's GPU hours: 90 classifiers at 50 x 35,000
    images and 6 detectors (one per fold, on detect/guide) at config/paper.yaml's smaller
    detect budget."""
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    study = gpu_check.paper_hours(images_per_s=11_000, first_step_s=60)
    assert study["classifier_images"] == 90 * 50 * 35_000
    assert study["detectors"] == 6  # T2axi's localiser per fold; 14 sequences carry its tumour
    assert study["detector_images"] == 6 * 5 * 20_000  # a detector needs far less (paper.yaml)
    expected = (90 * 50 * 35_000 + 6 * 100_000) / 11_000 + 60 + 361 * gpu_check.JOB_START_S
    assert study["hours"] == round(expected / 3600, 2)
