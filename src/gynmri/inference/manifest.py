"""The run's manifest (``results/models/manifest.json``): what ``gynmri predict`` needs besides
the models: the task, the best ensemble, the settings the models were trained with, the naming
rules, and where the models are."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gynmri.evaluation.scoring import best_ensemble

MANIFEST = "models/manifest.json"
FORMAT = 1


class PredictError(RuntimeError):
    """The exam or the trained models cannot be used (the message says why)."""


def build_manifest(
    *,
    task: dict,
    sequences: list[str],
    folds: list[int],
    harmonize: dict,
    detect: dict,
    evaluate: dict,
    ensembles: pd.DataFrame,
    rules: list[dict],
    tta: dict | None = None,
) -> dict:
    """Return the manifest: the task, the best ensemble of ``ensembles``, the settings
    (``tta``: the test-time views the run's predictions average, None: none)."""
    return {
        "format": FORMAT,
        "task": {"name": task["name"], "classes": task["classes"], "positive": task["positive"]},
        "sequences": list(sequences),
        "folds": list(folds),
        "ensemble": list(best_ensemble(ensembles)),
        "harmonize": harmonize,
        "detect": detect,
        "evaluate": {k: evaluate[k] for k in ("aggregate", "combine", "threshold")},
        "rules": rules,
        "tta": tta,
        "models": "models/{sequence}/fold{fold}/model",
        "detectors": "detectors/{sequence}/fold{fold}/model",
    }


def load_manifest(results: Path) -> dict:
    """Return the results folder's manifest, or raise PredictError saying how to make one."""
    path = Path(results) / MANIFEST
    if not path.is_file():
        raise PredictError(
            f"{path} not found: run the workflow first (snakemake --cores all), or point "
            "--results at a finished run"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise PredictError(f"{path}: manifest format {manifest.get('format')}, expected {FORMAT}")
    return manifest
