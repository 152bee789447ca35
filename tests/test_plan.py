"""config/paper.yaml plans the study's full DAG (15 sequences x 6 folds) without reading DICOM."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_plan", ROOT / "bench" / "plan.py")
plan = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plan)


def test_paper_protocol_plans_90_trainings(tmp_path):
    config = plan.make_cohort(tmp_path, {"sarcoma": 12, "myoma": 18})  # empty folders: no DICOM
    seconds, out, status = plan.dry_run(tmp_path, config)
    assert status == 0, out[-3000:]
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert stats["train"] == "90" and stats["predict"] == "90" and stats["ingest"] == "30"
    lock = (tmp_path / "folds.lock.tsv").read_text().splitlines()
    assert len(lock) == 31 and {line.split("\t")[3] for line in lock[1:]} == {
        str(k) for k in range(6)
    }
