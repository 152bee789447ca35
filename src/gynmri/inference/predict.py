"""AI-assisted reading of one new exam: ``gynmri predict EXAM_DIR``.

The exam goes through the pipeline's own steps: discovery, naming and series choice and the wide
slices of ingest (:mod:`gynmri.preprocessing.ingest`, pixels rounded as the tables store them),
the tumour localisation of the workflow's automatic-selection jobs
(:func:`gynmri.localise.crossval.select`: the segmentation networks of every fold averaged,
on the sequence itself or on the guide's series and carried onto it, slices whose predicted
tumour passes the area threshold, cropped around its centroid), every fold
model's classification of the selected slices, and the evaluation's scoring
(:mod:`gynmri.evaluation.scoring`: slices -> exam per fold model, the mean over fold models,
sequences combined into the run's best ensemble). Class-activation maps (HiResCAM,
:data:`gynmri.inference.cams.FIGURE_METHOD`) of the selected slices show where the classifiers
look. Writes ``prediction.json``, ``report.html`` and one PNG per sequence.

Nothing identifying is written: no folder name, no header value beyond series number, plane
and sequence name.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gynmri.evaluation.scoring import exam_scores, prob_columns
from gynmri.inference.manifest import PredictError, load_manifest
from gynmri.io.dicom import Series
from gynmri.io.slices import quantize
from gynmri.io.volumes import SeriesError
from gynmri.preprocessing.grid import Grid
from gynmri.preprocessing.ingest import choose_series, discover_exam, read_volume, wide_slices
from gynmri.report.page import prediction_page
from gynmri.training.crossval import prediction_rows

log = logging.getLogger(__name__)

#: The exam's key in the scoring tables (never a patient identifier).
EXAM = "exam"


def load_models(
    results: Path, manifest: dict, sequence: str, kind: str, classes: list[str]
) -> list:
    """Return the fold classifiers of one sequence (``kind``: the manifest's path key), refusing models of
    another task or image size than the manifest's."""
    from gynmri.training.weights import ModelMismatch, load_checked

    models = []
    for fold in manifest["folds"]:
        path = Path(results) / manifest[kind].format(sequence=sequence, fold=fold)
        if not path.is_dir():
            raise PredictError(f"model {path} not found: the results folder is incomplete")
        try:
            model, _ = load_checked(path, classes, int(manifest["harmonize"]["size"]))
        except ModelMismatch as err:
            raise PredictError(str(err)) from None
        models.append(model)
    return models


@dataclass
class ExamVolumes:
    """What an exam holds for the ensemble: per sequence the series and its wide slices, why the
    others are missing, and the name of every series found (for messages)."""

    volumes: dict[str, tuple[Series, np.ndarray, Grid]]  # series, wide slices, their grid
    missing: dict[str, str]
    found: list[str]


def read_exam(exam: Path, manifest: dict, wanted: list[str]) -> ExamVolumes:
    """Return the :class:`ExamVolumes` of one exam, read as ingest reads a patient."""
    if not exam.is_dir():
        raise PredictError(f"{exam} is not a folder")
    found = discover_exam(exam, manifest["rules"], wanted)
    if not found.series:
        reasons = sorted({r.reason for r in found.records if r.reason}) or ["the folder is empty"]
        raise PredictError(
            f"{exam}: no MR DICOM series found in {len(found.records)} files ({'; '.join(reasons)})"
        )
    names = [
        found.sequence_of[s.uid] or f"series {s.number} ({found.reasons[s.uid]})"
        for s in found.series
    ]
    hcfg, volumes, missing = manifest["harmonize"], {}, {}
    for sequence in wanted:
        chosen, _ = choose_series(found.by_sequence.get(sequence, []))
        if chosen is None:
            missing[sequence] = "no series of this sequence in the exam"
            continue
        try:
            volume, _, _ = read_volume(chosen, hcfg)
            wide = wide_slices(volume.image, chosen.plane, hcfg, manifest["detect"]["fov_mm"])
        except (SeriesError, ValueError) as err:
            missing[sequence] = f"series {chosen.number}: {err}"
            continue
        volumes[sequence] = (chosen, quantize(wide.values), wide.grid)
    return ExamVolumes(volumes, missing, names)


class _Timer:
    """Seconds spent per step of a prediction."""

    def __init__(self, steps: tuple[str, ...]):
        self.seconds = dict.fromkeys(steps, 0.0)

    @contextmanager
    def step(self, name: str):
        start = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def load_localisers(results: Path, manifest: dict, sequence: str) -> list:
    """Return the (network, meta) localisers of every fold of one sequence (network None for a
    sequence carried from the guide's), refusing those made for another image size than the
    manifest's."""
    from gynmri.localise.store import load_localiser, load_meta

    out = []
    for fold in manifest["folds"]:
        path = Path(results) / manifest["detectors"].format(sequence=sequence, fold=fold)
        if not path.is_dir():
            raise PredictError(f"localiser {path} not found: the results folder is incomplete")
        try:
            meta = load_meta(path)
            net = load_localiser(path)[0] if meta["role"] == "localiser" else None
        except (ValueError, KeyError) as err:
            raise PredictError(f"localiser {path}: {err}") from None
        if int(meta["size"]) != int(manifest["harmonize"]["size"]):
            raise PredictError(
                f"localiser {path} crops {meta['size']}-pixel slices, but the models need "
                f"{manifest['harmonize']['size']}: models of another image size"
            )
        out.append((net, meta))
    return out


def _select(results: Path, manifest: dict, sequence: str, volumes: dict, timer: _Timer):
    """Return the :class:`Selection` of one sequence: where its localisers (every fold's,
    averaged) find the tumour, or where the guide's find it, carried onto its slices."""
    from gynmri.localise.carry import carry
    from gynmri.localise.crossval import select, tumour_maps

    _, images, grid = volumes[sequence]
    with timer.step("load_models"):
        own = load_localisers(results, manifest, sequence)
        guide = own[0][1].get("guide")
        networks = load_localisers(results, manifest, guide) if guide else own
    with timer.step("detect"):
        if guide is None:
            maps = tumour_maps(networks, images)
        elif guide not in volumes:
            raise PredictError(f"{sequence}: the tumour is found on {guide}, not in this exam")
        else:
            maps = carry(tumour_maps(networks, volumes[guide][1]), volumes[guide][2], grid)
        threshold = float(np.mean([meta["area_threshold_px"] for _, meta in own]))
        return select(maps, images, threshold, int(manifest["harmonize"]["size"]))


def _classify(results: Path, manifest: dict, sequence: str, volumes: dict, timer: _Timer):
    """Return (selection, slice predictions of every fold model, fold models) of one sequence."""
    from gynmri.training.step import predict_proba

    classes = manifest["task"]["classes"]
    selection = _select(results, manifest, sequence, volumes, timer)
    with timer.step("load_models"):
        models = load_models(results, manifest, sequence, "models", classes)
    slices = pd.DataFrame(
        {"patient": EXAM, "sequence": sequence, "label": "", "slice_index": selection.chosen}
    )
    with timer.step("classify"):
        rows = [
            prediction_rows(
                slices,
                fold,
                classes,
                predict_proba(model, selection.crops, tta=manifest.get("tta")),
            )
            for fold, model in zip(manifest["folds"], models, strict=True)
        ]
    return selection, pd.concat(rows, ignore_index=True), models


def _explain(models, selection, class_index: int, classes, path: Path, sequence: str) -> Path:
    """Write the class-activation maps (FIGURE_METHOD, mean over the fold models) of the selected
    slices to a PNG, with the outline of the tumour the localiser segmented."""
    from gynmri.inference.cams import FIGURE_METHOD, class_maps
    from gynmri.inference.explain import overlay_grid_png
    from gynmri.localise.locate import crop_at

    crops = selection.crops
    show = np.linspace(0, len(crops) - 1, min(len(crops), 6)).round().astype(int)
    maps = np.mean([class_maps(m, crops[show], class_index, FIGURE_METHOD) for m in models], axis=0)
    maps = maps / np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12)
    loc = selection.localisation
    outlines = crop_at(loc.mask[loc.chosen], loc.center, crops.shape[-1])[show]
    titles = [f"{sequence} slice {int(selection.chosen[i])}" for i in show]
    return Path(overlay_grid_png(crops[show], maps, path, titles, outlines=outlines))


def _probabilities(scores: pd.DataFrame, classes: list[str]) -> dict[str, float]:
    return dict(zip(classes, map(float, scores[prob_columns(classes)].iloc[0]), strict=True))


def predict_exam(
    exam: Path, results: Path, out_dir: Path, threshold: float | None = None, explain: bool = True
) -> dict:
    """Return (and write to ``out_dir``) the prediction for one exam; see the module docstring."""
    started = time.perf_counter()
    manifest = load_manifest(results)
    classes, positive = manifest["task"]["classes"], manifest["task"]["positive"]
    evaluate, members = manifest["evaluate"], manifest["ensemble"]
    threshold = float(evaluate["threshold"] if threshold is None else threshold)
    timer = _Timer(("read_and_harmonize", "load_models", "detect", "classify", "explain"))
    guide = manifest["detect"].get("guide")
    with timer.step("read_and_harmonize"):  # the guide's series too: it locates the tumour
        read = read_exam(Path(exam), manifest, list(dict.fromkeys(members + [guide] * bool(guide))))
    volumes, missing, found = read.volumes, read.missing, read.found
    if not any(s in volumes for s in members):
        raise PredictError(
            f"{exam}: no usable sequence for the ensemble {'+'.join(members)} (found: "
            f"{', '.join(found)}; missing: {'; '.join(f'{k}: {v}' for k, v in missing.items())})"
        )
    if guide and guide not in volumes:
        raise PredictError(
            f"{exam}: the tumour is located on {guide}, which cannot be read ({missing[guide]})"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions, per_sequence, pngs = [], {}, []
    for sequence in [s for s in members if s in volumes]:
        series, images, _ = volumes[sequence]
        selection, rows, models = _classify(results, manifest, sequence, volumes, timer)
        predictions.append(rows)
        sequence_scores, _ = exam_scores(rows, classes, evaluate)
        probs = _probabilities(sequence_scores, classes)
        per_sequence[sequence] = {
            "series_number": series.number,
            "plane": series.plane,
            "slices": len(images),
            "selected_slices": selection.chosen.tolist(),
            "slice_tumour_area_px": [int(a) for a in selection.localisation.area_px],
            "tumour_center_px": [round(float(c), 1) for c in selection.center],
            "probabilities": probs,
        }
        if explain:
            with timer.step("explain"):
                pngs.append(
                    _explain(
                        models,
                        selection,
                        int(np.argmax(list(probs.values()))),
                        classes,
                        out_dir / f"gradcam_{sequence}.png",
                        sequence,
                    )
                )
    _, ensemble = exam_scores(pd.concat(predictions, ignore_index=True), classes, evaluate)
    probs = _probabilities(ensemble, classes)
    p_positive = float(sum(probs[c] for c in positive))
    result = {
        "task": manifest["task"]["name"],
        "classes": classes,
        "positive": positive,
        "ensemble": members,
        "sequences_used": list(per_sequence),
        "sequences_missing": missing,
        "per_sequence": per_sequence,
        "probabilities": probs,
        "predicted_class": max(probs, key=probs.get),
        "positive_probability": p_positive,
        "threshold": threshold,
        "decision": "positive" if p_positive >= threshold else "negative",
        # what the models are for, how they were validated and their limits (the run's report)
        "model_card": _model_card(results),
        "seconds": round(time.perf_counter() - started, 2),
        "seconds_by_step": {k: round(v, 2) for k, v in timer.seconds.items()},
    }
    (out_dir / "prediction.json").write_text(json.dumps(result, indent=1))
    (out_dir / "report.html").write_text(prediction_page(result, pngs))
    return result


def _model_card(results: Path) -> str | None:
    """Return the run's model card (results/report/model_card.md) as an absolute path, or None
    when the run has not written its report yet."""
    card = Path(results) / "report" / "model_card.md"
    return str(card.resolve()) if card.is_file() else None


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="gynmri predict",
        description="Apply the trained ensemble to one exam (a folder of DICOM files).",
    )
    ap.add_argument("exam_dir", type=Path, help="one patient's exam: any folder layout of DICOM")
    ap.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="results folder of a finished workflow run (default: results)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("prediction"),
        help="output folder for prediction.json, report.html, PNGs (default: prediction)",
    )
    ap.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="decision threshold on the positive probability (default: the run's)",
    )
    ap.add_argument("--no-explain", action="store_true", help="skip the class-activation maps")
    return ap


def main(argv: list[str] | None = None) -> int:
    """``gynmri predict EXAM_DIR [--results DIR] [--out DIR] [--threshold X] [--no-explain]``."""
    ap = _parser()
    args = ap.parse_args(argv)
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        ap.error("--threshold must lie in [0, 1]")
    from gynmri.training.runtime import compilation_cache_dir, enable_compilation_cache

    # The workflow's compiled networks (same architecture and batch shape) are reused from it.
    enable_compilation_cache(compilation_cache_dir())
    try:
        result = predict_exam(
            args.exam_dir, args.results, args.out, args.threshold, explain=not args.no_explain
        )
    except PredictError as err:
        print(f"gynmri predict: {err}")
        return 1
    probs = ", ".join(f"{c} {p:.3f}" for c, p in result["probabilities"].items())
    print(f"ensemble {'+'.join(result['sequences_used'])}: {probs}")
    for seq, v in result["per_sequence"].items():
        print(f"  {seq}: series {v['series_number']}, slices {v['selected_slices']} selected")
    for seq, why in result["sequences_missing"].items():
        print(f"  {seq}: missing ({why})")
    card = result["model_card"] or "not written yet (run the workflow's report)"
    print(f"model card (intended use, validation, limitations): {card}")
    print(
        f"decision: {result['decision']} (p={result['positive_probability']:.3f}, threshold "
        f"{result['threshold']}); written to {args.out}/ in {result['seconds']} s"
    )
    return 0
