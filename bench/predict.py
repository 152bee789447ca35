"""Benchmark: gynmri predict on one unseen synthetic exam against a finished run's models.

Usage: python bench/predict.py [RESULTS_DIR]   (default: results, e.g. after the demo run)

Prints the wall time of the whole command (a fresh process: Python and JAX start-up, model
loading, compilation included), the time by step as predict reports it, and the ratio to the
30-second target, next to the peer: the pipeline's own ingest of the same exam (discovery and
harmonization with its annotation), measured in the same run.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gynmri.io.deid import DEMO_KEY
from gynmri.preprocessing.ingest import IngestSettings, ingest_patient
from gynmri.synth import SynthSpec, plan_cohort, write_patient

TARGET_S = 30.0


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "results").resolve()
    manifest = json.loads((results / "models/manifest.json").read_text())
    classes = manifest["task"]["classes"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = SynthSpec(dict.fromkeys(classes, 1), centers=1, seed=777)
        row = plan_cohort(spec).iloc[0]
        write_patient(spec, row, tmp / "dicom", tmp / "masks")
        exam = tmp / "dicom" / row.patient_dir
        settings = IngestSettings(
            manifest["ensemble"], manifest["harmonize"], manifest["detect"]["fov_mm"]
        )
        case = {"patient": "Pbench", "center": row.center, "label": row.label, "label_index": 0}
        started = time.perf_counter()
        ingest_patient(
            exam,
            tmp / "masks" / row.patient_dir,
            case=case,
            settings=settings,
            rules=manifest["rules"],
            secret=DEMO_KEY,
        )
        ingest_s = time.perf_counter() - started
        started = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "gynmri.cli",
                "predict",
                str(exam),
                "--results",
                str(results),
                "--out",
                str(tmp / "out"),
            ],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if proc.returncode:
            raise SystemExit(proc.stdout + proc.stderr)
        result = json.loads((tmp / "out/prediction.json").read_text())
    models = len(manifest["folds"]) * len(result["sequences_used"])
    print(
        f"predict: {wall:.1f} s wall for one exam ({len(result['sequences_used'])} sequences x "
        f"{len(manifest['folds'])} folds = {models} classifiers + {models} detectors)"
    )
    print("  by step (in-process):", json.dumps(result["seconds_by_step"]))
    print(f"peer, pipeline ingest of the same exam: {ingest_s:.1f} s")
    print(
        f"ratio predict / ingest: {wall / ingest_s:.2f}; predict / 30 s target: {wall / TARGET_S:.2f}"
    )


if __name__ == "__main__":
    main()
