"""AI-assisted reading of one new exam: ``gynmri predict EXAM_DIR``.

The exam's series are discovered and named with the pipeline's own code and rule table, each
sequence the ensemble uses is harmonised onto the detector's wide grid (no annotation needed),
the tumour slices are selected by the detectors of every fold, cropped around the detected
tumour centre, classified by every fold model, and averaged: over slices (evaluate/aggregate),
folds, then sequences (evaluate/combine). Grad-CAM maps of the selected slices show where the
classifiers look. Writes ``prediction.json``, ``report.html`` and one PNG per sequence.

Nothing identifying is written: no folder name, no header value beyond series number, plane
and sequence name.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

MANIFEST = "models/manifest.json"
FORMAT = 1


class PredictError(RuntimeError):
    """The exam or the trained models cannot be used (the message says why)."""


def build_manifest(*, task: dict, sequences: list[str], folds: list[int], harmonize: dict,
                   detect: dict, evaluate: dict, ensembles: pd.DataFrame,
                   rules: list[dict]) -> dict:  # fmt: skip
    """Return the manifest: the task, the ensemble (the best of ``ensembles``), the settings."""
    return {
        "format": FORMAT,
        "task": {"name": task["name"], "classes": task["classes"], "positive": task["positive"]},
        "sequences": list(sequences),
        "folds": list(folds),
        "ensemble": str(ensembles["ensemble"].iloc[0]).split("+"),
        "harmonize": harmonize,
        "detect": detect,
        "evaluate": {k: evaluate[k] for k in ("aggregate", "combine", "threshold")},
        "rules": rules,
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


def _load_models(results: Path, manifest: dict, sequence: str, kind: str, classes: list[str]):
    """Return the fold models of one sequence, refusing models of another task or image size."""
    from gynmri.train import load_model

    models = []
    size = int(manifest["harmonize"]["size"])
    for fold in manifest["folds"]:
        path = Path(results) / manifest[kind].format(sequence=sequence, fold=fold)
        if not path.is_dir():
            raise PredictError(f"model {path} not found: the results folder is incomplete")
        model, meta = load_model(path)
        if meta.get("classes") != classes:
            raise PredictError(
                f"model {path} was trained for classes {meta.get('classes')}, but the manifest's "
                f"task needs {classes}: models of another task"
            )
        if int(meta.get("size", size)) != size:
            raise PredictError(
                f"model {path} was trained on {meta.get('size')}-pixel slices, but the manifest "
                f"harmonises to {size}: models of another image size"
            )
        models.append(model)
    return models


def _series_volumes(exam: Path, manifest: dict, wanted: list[str]):
    """Return ({sequence: (series, wide slices)}, {sequence: why missing}, discovery summary)."""
    from gynmri.dicom import discover
    from gynmri.harmonize import SeriesError
    from gynmri.ingest import wide_slices
    from gynmri.sequences import name_series
    from gynmri.volumes import build_volumes, choose_volume

    if not exam.is_dir():
        raise PredictError(f"{exam} is not a folder")
    records, series_list = discover(exam)
    if not series_list:
        reasons = sorted({r.reason for r in records if r.reason}) or ["the folder is empty"]
        raise PredictError(
            f"{exam}: no MR DICOM series found in {len(records)} files ({'; '.join(reasons)})"
        )
    named: dict[str, list] = {}
    found = []
    for s in series_list:
        naming = name_series(manifest["rules"], s)
        found.append(naming.sequence or f"series {s.number} ({naming.reason})")
        if naming.sequence in wanted:
            named.setdefault(naming.sequence, []).append(s)
    hcfg, dcfg = manifest["harmonize"], manifest["detect"]
    volumes, missing = {}, {}
    for sequence in wanted:
        if sequence not in named:
            missing[sequence] = "no series of this sequence in the exam"
            continue
        chosen = max(named[sequence], key=lambda s: s.number)  # a repeat is usually the better one
        try:
            built, _ = build_volumes(chosen)
            volume = choose_volume(built, hcfg.get("dwi_bvalue", "highest"))
            values, _ = wide_slices(volume.image, chosen.plane, hcfg, dcfg["fov_mm"])
        except (SeriesError, ValueError) as err:
            missing[sequence] = f"series {chosen.number}: {err}"
            continue
        volumes[sequence] = (chosen, values.astype(np.float32))
    return volumes, missing, found


def _png_tag(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def predict_exam(exam: Path, results: Path, out_dir: Path, threshold: float | None = None,
                 explain: bool = True) -> dict:  # fmt: skip
    """Return (and write to ``out_dir``) the prediction for one exam; see the module docstring."""
    from gynmri.autoselect import detect_and_crop
    from gynmri.train import predict_proba

    started = time.perf_counter()
    manifest = load_manifest(results)
    classes, positive = manifest["task"]["classes"], manifest["task"]["positive"]
    ecfg = manifest["evaluate"]
    threshold = float(ecfg["threshold"] if threshold is None else threshold)
    members = manifest["ensemble"]
    timings = {}
    mark = time.perf_counter()
    volumes, missing, found = _series_volumes(Path(exam), manifest, members)
    timings["read_and_harmonise"] = time.perf_counter() - mark
    if not volumes:
        raise PredictError(
            f"{exam}: no usable sequence for the ensemble {'+'.join(members)} "
            f"(found: {', '.join(found)}; missing: "
            + "; ".join(f"{k}: {v}" for k, v in missing.items()) + ")"
        )  # fmt: skip
    size, dcfg = int(manifest["harmonize"]["size"]), manifest["detect"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_sequence, pngs = {}, []
    for key in ("load_models", "detect", "classify", "explain"):
        timings[key] = 0.0
    for sequence, (series, images) in volumes.items():
        mark = time.perf_counter()
        detectors = _load_models(results, manifest, sequence, "detectors", ["no_tumour", "tumour"])
        models = _load_models(results, manifest, sequence, "models", classes)
        timings["load_models"] += time.perf_counter() - mark
        mark = time.perf_counter()
        scores, chosen, centre, crops = detect_and_crop(
            detectors, images, size, int(dcfg["tiles"]), float(dcfg["threshold"])
        )
        timings["detect"] += time.perf_counter() - mark
        mark = time.perf_counter()
        slice_probs = np.mean([predict_proba(m, crops) for m in models], axis=0)
        timings["classify"] += time.perf_counter() - mark
        probs = _aggregate(slice_probs, ecfg["aggregate"])
        per_sequence[sequence] = {
            "series_number": series.number, "plane": series.plane, "slices": len(images),
            "selected_slices": chosen.tolist(),
            "slice_tumour_scores": [round(float(s), 4) for s in scores],
            "tumour_centre_px": [round(float(c), 1) for c in centre],
            "probabilities": dict(zip(classes, map(float, probs), strict=True)),
        }  # fmt: skip
        if explain:
            mark = time.perf_counter()
            pngs.append(_explain(models, crops, chosen, int(np.argmax(probs)), classes,
                                 out_dir / f"gradcam_{sequence}.png", sequence))  # fmt: skip
            timings["explain"] += time.perf_counter() - mark
    stacked = np.array([list(v["probabilities"].values()) for v in per_sequence.values()])
    if ecfg["combine"] == "max":
        ensemble = stacked.max(axis=0) / stacked.max(axis=0).sum()
    else:
        ensemble = stacked.mean(axis=0)
    p_positive = float(sum(ensemble[classes.index(c)] for c in positive))
    result = {
        "task": manifest["task"]["name"], "classes": classes, "positive": positive,
        "ensemble": members, "sequences_used": list(per_sequence),
        "sequences_missing": missing, "per_sequence": per_sequence,
        "probabilities": dict(zip(classes, map(float, ensemble), strict=True)),
        "predicted_class": classes[int(np.argmax(ensemble))],
        "positive_probability": p_positive, "threshold": threshold,
        "decision": "positive" if p_positive >= threshold else "negative",
        "seconds": round(time.perf_counter() - started, 2),
        "seconds_by_step": {k: round(v, 2) for k, v in timings.items()},
    }  # fmt: skip
    (out_dir / "prediction.json").write_text(json.dumps(result, indent=1))
    (out_dir / "report.html").write_text(_html(result, pngs))
    return result


def _aggregate(slice_probs: np.ndarray, rule: str) -> np.ndarray:
    """Return the exam's class probabilities from its slices' (as the pipeline's evaluation)."""
    if rule == "max":
        top = slice_probs.max(axis=0)
        return top / top.sum()
    if rule == "vote":
        return np.bincount(slice_probs.argmax(axis=1), minlength=slice_probs.shape[1]) / len(
            slice_probs
        )
    return slice_probs.mean(axis=0)


def _explain(models, crops, chosen, class_index, classes, path: Path, sequence: str) -> Path:
    """Write the Grad-CAM maps (mean over the fold models) of the selected slices to a PNG."""
    from gynmri.explain import gradcam, overlay_grid_png

    show = np.linspace(0, len(crops) - 1, min(len(crops), 6)).round().astype(int)
    maps = np.mean([gradcam(m, crops[show], class_index) for m in models], axis=0)
    maps = maps / np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12)
    titles = [f"{sequence} slice {int(chosen[i])}" for i in show]
    return Path(overlay_grid_png(crops[show], maps, path, titles))


def _html(result: dict, pngs: list[Path]) -> str:
    """Return the one-page HTML summary of a prediction (figures embedded)."""
    rows = "".join(
        f"<tr><td>{html.escape(seq)}</td><td>{v['series_number']}</td>"
        f"<td>{len(v['selected_slices'])} of {v['slices']}</td>"
        + "".join(f"<td>{p:.3f}</td>" for p in v["probabilities"].values())
        + "</tr>"
        for seq, v in result["per_sequence"].items()
    )
    head = "".join(f"<th>p({html.escape(c)})</th>" for c in result["classes"])
    ens = "".join(f"<td><b>{p:.3f}</b></td>" for p in result["probabilities"].values())
    missing = "".join(
        f"<li>{html.escape(k)}: {html.escape(v)}</li>"
        for k, v in result["sequences_missing"].items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>gynmri prediction</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto}"
        "td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:right}"
        "img{max-width:100%}.d{font-size:1.3em}</style></head><body>"
        f"<h1>gynmri prediction: {html.escape(result['task'])}</h1>"
        f"<p class='d'>Most probable: <b>{html.escape(result['predicted_class'])}</b>; "
        f"p({html.escape('+'.join(result['positive']))}) = {result['positive_probability']:.3f} "
        f"&rarr; <b>{result['decision']}</b> at threshold {result['threshold']}</p>"
        "<p>Decision support only: the tumour slices were selected automatically; check them "
        "and the maps below.</p>"
        f"<table><tr><th>sequence</th><th>series</th><th>slices selected</th>{head}</tr>{rows}"
        f"<tr><td><b>ensemble</b></td><td></td><td></td>{ens}</tr></table>"
        + (f"<h2>Missing sequences</h2><ul>{missing}</ul>" if missing else "")
        + "<h2>Where the models look (Grad-CAM, predicted class)</h2>"
        + "".join(_png_tag(p) for p in pngs)
        + "</body></html>"
    )


def main(argv: list[str] | None = None) -> int:
    """``gynmri predict EXAM_DIR [--results DIR] [--out DIR] [--threshold X]``."""
    ap = argparse.ArgumentParser(
        prog="gynmri predict",
        description="Apply the trained ensemble to one exam (a folder of DICOM files).",
    )
    ap.add_argument("exam_dir", type=Path, help="one patient's exam: any folder layout of DICOM")
    ap.add_argument("--results", type=Path, default=Path("results"),
                    help="results folder of a finished workflow run (default: results)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=Path("prediction"),
                    help="output folder for prediction.json, report.html, PNGs (default: prediction)")  # fmt: skip
    ap.add_argument("--threshold", type=float, default=None,
                    help="decision threshold on the positive probability (default: the run's)")  # fmt: skip
    ap.add_argument("--no-explain", action="store_true", help="skip the Grad-CAM maps")
    args = ap.parse_args(argv)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        ap.error("--threshold must lie in [0, 1]")
    try:
        result = predict_exam(args.exam_dir, args.results, args.out, args.threshold,
                              explain=not args.no_explain)  # fmt: skip
    except PredictError as err:
        print(f"gynmri predict: {err}")
        return 1
    probs = ", ".join(f"{c} {p:.3f}" for c, p in result["probabilities"].items())
    print(f"ensemble {'+'.join(result['sequences_used'])}: {probs}")
    for seq, v in result["per_sequence"].items():
        print(f"  {seq}: series {v['series_number']}, slices {v['selected_slices']} selected")
    for seq, why in result["sequences_missing"].items():
        print(f"  {seq}: missing ({why})")
    print(f"decision: {result['decision']} (p={result['positive_probability']:.3f}, threshold "
          f"{result['threshold']}); written to {args.out}/ in {result['seconds']} s")  # fmt: skip
    return 0
