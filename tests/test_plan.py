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


def test_external_validation_beside_the_k_folds_adds_one_training_per_hospital(tmp_path):
    """folds.scheme both: the 6 k-fold trainings per sequence, plus one per held-out hospital
    (classifiers only: no localiser, no automatic selection), sharing ingest."""
    import yaml

    config = plan.make_cohort(tmp_path, {"sarcoma": 12, "myoma": 18})
    settings = yaml.safe_load(config.read_text())
    settings["folds"]["scheme"] = "both"
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    seconds, out, status = plan.dry_run(tmp_path, config)
    assert status == 0, out[-3000:]
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert stats["train"] == str(15 * (6 + 3)) and stats["predict"] == str(15 * (6 + 3))
    assert stats["ingest"] == "30" and stats["external_folds"] == "1" and stats["clinical"] == "1"
    assert stats["predict_auto"] == str(15 * 6)  # the automatic selection: k-fold only
    lock = (tmp_path / "folds.lock.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in lock[1:]]
    assert lock[0].split("\t")[-1] == "scheme" and len(rows) == 60
    centre = {r[2]: r[3] for r in rows if r[4] == "centre"}
    assert centre == {"center_a": "0", "center_b": "1", "center_c": "2"}
