"""gynmri predict on a synthetic exam the models never saw, and its refusals."""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from gynmri.config import load_config
from gynmri.evaluation.scoring import best_ensemble, combine_sequences, patient_scores
from gynmri.inference.predict import predict_exam
from gynmri.io.cases import load_cases
from gynmri.io.deid import DEMO_KEY
from gynmri.preprocessing.ingest import IngestSettings, discover_exam, ingest_patient
from gynmri.preprocessing.sequences import load_rules
from gynmri.synth import SynthSpec, plan_cohort, write_patient

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow


def predict(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "gynmri.cli", "predict", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def exam(tmp_path_factory):
    """A new synthetic patient (another seed than the training cohort) and its tumour slices."""
    out = tmp_path_factory.mktemp("exam")
    spec = SynthSpec({"myoma": 1, "sarcoma": 1}, centers=2, seed=4242)
    row = plan_cohort(spec).iloc[1]
    write_patient(spec, row, out / "dicom", out / "masks")
    config = load_config(ROOT / "tests/configs/tiny.yaml")
    # the annotated tumour slices, from the masks the models never see at prediction time
    table = ingest_patient(
        out / "dicom" / row.patient_dir,
        out / "masks" / row.patient_dir,
        case={"patient": "Pnew", "center": row.center, "label": row.label, "label_index": 0},
        settings=IngestSettings.from_config(config),
        rules=load_rules(ROOT / "config/sequences.yaml"),
        secret=DEMO_KEY,
    ).slices
    truth = {s: set(g["slice_index"]) for s, g in table.groupby("sequence")}
    return out / "dicom" / row.patient_dir, truth


@pytest.fixture(scope="module")
def predicted(tiny_run, exam, tmp_path_factory):
    out = tmp_path_factory.mktemp("prediction")
    started = time.perf_counter()
    proc = predict(exam[0], "--results", tiny_run / "results", "--out", out)
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"gynmri predict: {seconds:.1f} s wall (tiny run models)")
    return out, json.loads((out / "prediction.json").read_text()), proc.stdout


def test_predict_writes_probabilities_decision_and_maps(predicted):
    out, result, stdout = predicted
    probs = np.array(list(result["probabilities"].values()))
    assert ((probs >= 0) & (probs <= 1)).all() and probs.sum() == pytest.approx(1.0, abs=1e-5)
    for seq in result["per_sequence"].values():
        p = np.array(list(seq["probabilities"].values()))
        assert p.sum() == pytest.approx(1.0, abs=1e-5)
    assert result["decision"] in ("positive", "negative")
    assert (result["positive_probability"] >= result["threshold"]) == (
        result["decision"] == "positive"
    )
    assert set(result["sequences_used"]) == set(result["ensemble"])  # the run's best ensemble
    assert not result["sequences_missing"]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and result["predicted_class"] in html
    for seq in result["sequences_used"]:
        png = out / f"gradcam_{seq}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2_000
    assert "decision:" in stdout
    # the run's model card is linked: intended use, validation, limitations
    card = Path(result["model_card"])
    assert card.name == "model_card.md" and "## Intended use" in card.read_text()
    assert (
        card.as_uri() in html
        and f"model card (intended use, validation, limitations): {card}" in stdout
    )


def test_selected_slices_overlap_the_true_tumour_slices(predicted, exam):
    _, result, _ = predicted
    truth = exam[1]
    for seq, info in result["per_sequence"].items():
        selected = set(info["selected_slices"])
        assert selected & truth[seq], (seq, sorted(selected), sorted(truth[seq]))


def test_no_identifier_in_the_outputs(predicted, exam):
    out, _, stdout = predicted
    header = pydicom.dcmread(
        next(p for p in exam[0].rglob("*") if p.is_file() and p.suffix != ".db"),
        stop_before_pixels=True,
        force=True,
    )
    text = (
        stdout
        + "".join(p.read_text() for p in out.glob("*.json"))
        + (out / "report.html").read_text()
    )
    for value in (str(header.PatientName), str(header.PatientID), exam[0].name):
        assert value not in text


def test_refuses_a_folder_that_is_not_dicom(tiny_run, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    proc = predict(tmp_path, "--results", tiny_run / "results", "--out", tmp_path / "o")
    assert proc.returncode == 1 and "no MR DICOM series" in proc.stdout


def test_refuses_an_exam_without_a_usable_sequence(tiny_run, exam, tmp_path):
    only_adc = tmp_path / "adc"
    only_adc.mkdir()
    for f in exam[0].rglob("*"):
        if f.is_file():
            try:
                ds = pydicom.dcmread(f, stop_before_pixels=True)
            except Exception:
                continue
            if "ADC" in list(getattr(ds, "ImageType", [])):  # the derived ADC map only
                shutil.copy(f, only_adc / f.name)
    assert any(only_adc.iterdir())
    proc = predict(only_adc, "--results", tiny_run / "results", "--out", tmp_path / "o")
    assert proc.returncode == 1 and "no usable sequence" in proc.stdout


def test_refuses_an_exam_without_the_guide_sequence(tiny_run, exam, tmp_path):
    """tiny.yaml locates the tumour on T2axi only (detect.guide): without it, no selection."""
    found = discover_exam(exam[0], load_rules(ROOT / "config/sequences.yaml"), ["T2axi", "DWI"])
    t2axi = {r.path for s in found.by_sequence["T2axi"] for r in s.files}
    assert t2axi
    rest = tmp_path / "no-t2axi"
    for f in exam[0].rglob("*"):
        if f.is_file() and f not in t2axi:
            (rest / f.relative_to(exam[0])).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, rest / f.relative_to(exam[0]))
    proc = predict(rest, "--results", tiny_run / "results", "--out", tmp_path / "o")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "the tumour is located on T2axi" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("task", {"name": "other", "classes": ["a", "b", "c"], "positive": ["c"]}, "another task"),
        ("harmonize", "size", "another image size"),
    ],
)
def test_refuses_models_of_another_task_or_size(tiny_run, exam, tmp_path, field, value, message):
    results = tmp_path / "results"
    shutil.copytree(tiny_run / "results/models", results / "models")
    shutil.copytree(tiny_run / "results/detectors", results / "detectors")
    manifest = json.loads((results / "models/manifest.json").read_text())
    if field == "harmonize":
        manifest["harmonize"]["size"] = 2 * manifest["harmonize"]["size"]
    else:
        manifest[field] = value
    (results / "models/manifest.json").write_text(json.dumps(manifest))
    proc = predict(exam[0], "--results", results, "--out", tmp_path / "o", "--no-explain")
    assert proc.returncode == 1 and message in proc.stdout, proc.stdout + proc.stderr


def test_predict_on_a_held_out_patient_gives_its_out_of_fold_score(tiny_run, tmp_path):
    """gynmri predict and the evaluation share one path (ingest's discovery and wide slices, the
    detector's selection, the classifiers, the scoring): with the models of the fold that held a
    patient out, predict gives that patient's out-of-fold score with automatic slice selection."""
    results = tiny_run / "results"
    manifest = json.loads((results / "models/manifest.json").read_text())
    members = best_ensemble(pd.read_csv(results / "metrics/ensembles.tsv", sep="\t"))
    assert tuple(manifest["ensemble"]) == members  # the deployed model is the best ensemble
    series = pd.read_csv(results / "qc/series.tsv", sep="\t")
    used = series[series["sequence"].isin(members)]
    # a patient with exactly one series of each sequence of the ensemble: nothing to choose
    per_patient = used.groupby("patient")["sequence"].agg(lambda s: (len(s), s.nunique()))
    patient = sorted(p for p, n in per_patient.items() if n == (len(members), len(members)))[0]
    fold = int(
        pd.read_csv(results / "splits/folds.tsv", sep="\t")
        .set_index("patient")
        .loc[patient, "fold"]
    )
    guide = [manifest["detect"]["guide"]] if manifest["detect"]["guide"] else []
    for kind, sequences in (("models", members), ("detectors", {*members, *guide})):
        for sequence in sequences:
            shutil.copytree(
                results / kind / sequence / f"fold{fold}",
                tmp_path / "results" / kind / sequence / f"fold{fold}",
            )
    (tmp_path / "results/models/manifest.json").write_text(
        json.dumps({**manifest, "folds": [fold]})
    )
    cases = load_cases(load_config(tiny_run / "config.yaml")).set_index("patient")
    exam = tiny_run / "data/synthetic/dicom" / cases.loc[patient, "patient_dir"]
    result = predict_exam(exam, tmp_path / "results", tmp_path / "out", explain=False)

    classes, evaluate = manifest["task"]["classes"], manifest["evaluate"]
    auto = pd.concat(
        [
            pd.read_parquet(results / f"models/{s}/fold{fold}/auto_predictions.parquet")
            for s in members
        ]
    )
    scores = patient_scores(auto[auto["patient"] == patient], classes, evaluate["aggregate"])
    for sequence in members:
        selection = pd.read_parquet(results / f"detectors/{sequence}/fold{fold}/selection.parquet")
        mine = selection[(selection["patient"] == patient) & selection["selected"]]
        assert result["per_sequence"][sequence]["selected_slices"] == mine["slice_index"].tolist()
        expected = scores[scores["sequence"] == sequence][[f"p_{c}" for c in classes]].iloc[0]
        got = result["per_sequence"][sequence]["probabilities"]
        assert list(got.values()) == pytest.approx(expected.tolist(), abs=1e-5)
    ensemble = combine_sequences(scores, members, classes, evaluate["combine"])
    expected = ensemble[[f"p_{c}" for c in classes]].iloc[0].tolist()
    assert list(result["probabilities"].values()) == pytest.approx(expected, abs=1e-5)
