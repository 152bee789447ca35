"""End to end: the real Snakemake workflow on a tiny synthetic cohort, in a temporary folder."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pydicom
import pytest

from gynmri.config import load_config
from gynmri.io.cases import synth_spec
from gynmri.synth import planted_identifiers

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        *args,
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=1200,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def run(tiny_run):
    """The tiny uterine run (tests/configs/tiny.yaml), shared with tests/test_predict.py."""
    return tiny_run


def test_report_and_tables_are_written(run):
    html = (run / "results/report/index.html").read_text()
    assert "<img" in html and "data:image/png;base64," in html and "T2axi+DWI" in html
    per_seq = pd.read_csv(run / "results/metrics/sequences.tsv", sep="\t")
    assert set(per_seq["sequence"]) == {"T2axi", "DWI"}
    assert set(per_seq["fold"]) == {"all", "0", "1"}
    pooled = per_seq[per_seq["fold"] == "all"]
    assert (pooled["n"] == 9).all()  # every patient scored out of fold for each sequence
    assert (
        pooled[["accuracy", "sensitivity", "specificity", "auc"]]
        .apply(lambda c: c.between(0, 1))
        .all()
        .all()
    )
    ensembles = pd.read_csv(run / "results/metrics/ensembles.tsv", sep="\t")
    assert sorted(ensembles["ensemble"]) == ["DWI", "T2axi", "T2axi+DWI"]
    assert (ensembles["ss_avg_lo"] <= ensembles["ss_avg"]).all() and (
        ensembles["ss_avg"] <= ensembles["ss_avg_hi"]
    ).all()
    readers = pd.read_csv(run / "results/metrics/readers.tsv", sep="\t")
    assert {"role", "model"} <= set(readers["level"]) and (
        readers[readers["level"] == "model"]["n_patients"] == 9
    ).all()
    assert "SIMULATED" in html and "Reader study" in html and "Confusion matrices" in html
    # automatic (detector) vs annotated slice selection, side by side
    assert "Automatic vs annotated slice selection" in html and "Where the models look" in html
    selection = pd.read_csv(run / "results/metrics/selection_slices.tsv", sep="\t")
    assert set(selection["sequence"]) == {"T2axi", "DWI"} and (selection["patients"] == 9).all()
    assert (
        selection[["sensitivity", "specificity", "jaccard"]]
        .apply(lambda c: c.between(0, 1))
        .all()
        .all()
    )
    side = pd.read_csv(run / "results/metrics/selection_patients.tsv", sep="\t")
    assert set(side["selection"]) == {"annotated", "perfect_localiser", "automatic"}
    assert (side["n"] == 9).all()
    for png in ("roc", "ensembles", "confusion", "training", "readers", "gradcam", "localiser"):
        assert (run / f"results/figures/{png}.png").stat().st_size > 5_000
    # the localiser's kept tumour of every held-out patient, slice for slice, for the figure
    for sel_path in (run / "results/detectors").glob("*/fold*/selection.parquet"):
        sel = pd.read_parquet(sel_path)
        with np.load(sel_path.with_name("masks.npz")) as masks:
            assert sorted(masks.files) == sorted(sel["patient"].unique())
            for patient, part in sel.groupby("patient"):
                assert masks[patient].shape[0] == len(part) and masks[patient].dtype == bool
    # class-activation maps of every held-out patient scored against the tumour
    explanations = pd.read_csv(run / "results/metrics/explanations.tsv", sep="\t")
    assert sorted(zip(explanations["sequence"], explanations["method"], strict=True)) == sorted(
        (s, m) for s in ("T2axi", "DWI") for m in ("gradcam", "gradcam16", "hirescam")
    )
    assert (explanations["patients_total"] == 9).all()
    rates = explanations[["pointing_hit_rate", "tumour_share", "flat_maps"]]
    scored = explanations["patients"] > 0  # NaN where no patient was called right
    assert rates[scored].apply(lambda c: c.between(0, 1)).all().all()
    assert rates[~scored].isna().all().all()
    # NaN also when every scored map is all zero (no energy to share)
    assert explanations["energy_in_tumour"].dropna().between(0, 1).all()
    # at 32 pixels the last block is a single cell: its Grad-CAM maps are flat, point nowhere
    last = explanations[(explanations["method"] == "gradcam") & scored]
    assert (last["flat_maps"] == 1).all() and (last["pointing_hit_rate"] == 0).all()
    assert "Explanations measured against the tumour" in html
    check_clinical_tables(run, n_patients=9, recalibration="platt")


def check_clinical_tables(run: Path, n_patients: int, recalibration: str) -> None:
    """Calibration before/after recalibration, decision curves, subgroups and the model card of
    a finished run (also used by test_ovarian)."""
    cal = pd.read_csv(run / "results/metrics/calibration.tsv", sep="\t")
    best = cal[cal["model"].str.startswith("best ensemble")]
    assert set(best["recalibration"]) == {"none", recalibration}
    assert (best["n"] == n_patients).all() and best["brier"].between(0, 2).all()
    decision = pd.read_csv(run / "results/metrics/decision.tsv", sep="\t")
    assert decision["model"].str.startswith("best ensemble").any()
    assert (decision["treat_none"] == 0).all() and (decision["n"] == n_patients).all()
    subgroups = pd.read_csv(run / "results/metrics/subgroups.tsv", sep="\t")
    for variable, part in subgroups.groupby(["model", "variable"]):
        assert part["n"].sum() == n_patients, variable  # every patient in one group of each
    assert {"all", "hospital", "vendor", "field_strength"} <= set(subgroups["variable"])
    for png in ("calibration", "decision", "subgroups"):
        assert (run / f"results/figures/{png}.png").stat().st_size > 5_000
    card = (run / "results/report/model_card.md").read_text()
    for part in ("## Intended use", "## Training data", "## Performance", "## Limitations"):
        assert part in card
    html = (run / "results/report/index.html").read_text()
    for heading in ("Calibration", "Decision curves", "Subgroups", "Reporting checklist"):
        assert f"<h2>{heading}" in html, heading


def test_every_generated_file_is_accounted_for(run):
    files = pd.read_csv(run / "results/qc/files.tsv", sep="\t", keep_default_na=False)
    cases = pd.read_csv(run / "data/synthetic/cases.tsv", sep="\t")
    on_disk = sum(
        1
        for d in cases["patient_dir"]
        for p in (run / "data/synthetic/dicom" / d).rglob("*")
        if p.is_file()
    )
    assert len(files) == on_disk
    assert set(files["status"]) <= {"used", "excluded"}
    excluded = files[files["status"] == "excluded"]
    assert (excluded["reason"] != "").all()
    reasons = set(excluded["reason"])
    assert {"localizer", "not DICOM", "sequence ADC not in config sequences/use"} <= reasons


# Identifying attributes (after DICOM PS3.15 Annex E) whose values must never reach results.
IDENTIFYING_TAGS = [
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientIDs",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "RequestingPhysician",
    "PerformingPhysicianName",
    "OperatorsName",
    "StationName",
    "DeviceSerialNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
]


def header_identifiers(dicom_root: Path) -> set[str]:
    """Return the values of every identifying attribute found in the cohort's DICOM files."""
    found = set()
    for path in dicom_root.rglob("*"):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (pydicom.errors.InvalidDicomError, IsADirectoryError):
            continue
        for tag in IDENTIFYING_TAGS:
            value = str(ds.get(tag, "") or "")
            found.update(v for v in [value, *value.split("^")] if len(v) >= 5)
    return found


def test_no_planted_identifier_reaches_results(run):
    config = load_config(run / "config.yaml")
    planted = set(planted_identifiers(synth_spec(config["cohort"]["synthetic"])))
    in_headers = header_identifiers(run / "data/synthetic/dicom")
    assert planted <= in_headers  # the generator really wrote them
    secrets = sorted(s.lower() for s in in_headers)
    assert len(secrets) > 200
    texts = []
    for path in [*(run / "results").rglob("*"), *(run / ".snakemake" / "log").rglob("*")]:
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            table = pq.read_table(path).drop_columns(
                [c for c in ("pixels",) if c in pq.read_schema(path).names]
            )
            texts.append((path, table.to_pandas().to_csv().lower()))
        else:
            texts.append((path, path.read_bytes().decode("latin-1").lower()))
    assert len(texts) > 30
    leaks = [(str(p.relative_to(run)), s) for p, t in texts for s in secrets if s in t]
    assert not leaks, leaks[:5]


def test_each_training_program_is_traced_and_compiled_once(run):
    """Jobs that start together take turns on a program's first trace and compilation
    (training/programs.SharedProgram): one traces (exports) and compiles it, the others load the
    traced program and the compiled one: the classifiers' train step, the localisers' step."""
    # 2 sequences x 2 folds of classifiers; localisers on the guide sequence (T2axi) only
    for rule, program, jobs in (
        ("train", "train_step", 4),
        ("train_detector", "localiser_step", 2),
    ):
        logs = [p.read_text() for p in sorted((run / "results/logs" / rule).glob("*.log"))]
        traced = sum(text.count(f"XLA: {program}: traced and exported") for text in logs)
        reused = sum(text.count(f"XLA: {program}: traced program loaded") for text in logs)
        misses = sum(text.count(f"jit({program}) compiled in") for text in logs)
        loads = sum(
            text.count(f"jit({program}) loaded from the compilation cache") for text in logs
        )
        assert len(logs) == jobs and traced <= 1 and traced + reused == jobs, (rule, traced, reused)
        assert misses <= 1 and misses + loads == jobs, (rule, misses, loads)
        # each job says what it ran on
        assert all("device: cpu" in t and "GPU memory: allocated as needed" in t for t in logs)


def test_rerun_plans_nothing(run):
    proc = snakemake(run, "-n", "--cores", "2")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_snakemake_report(run):
    snakemake(run, "--report", str(run / "snakemake-report.zip"), "--cores", "1")
    assert (run / "snakemake-report.zip").stat().st_size > 10_000


def test_bad_config_key_stops_with_its_name(tmp_path):
    text = (ROOT / "tests" / "configs" / "tiny.yaml").read_text().replace("epochs: 2", "epocs: 2")
    (tmp_path / "config.yaml").write_text(text)
    proc = snakemake(tmp_path, "-n", check=False)
    assert proc.returncode != 0
    assert "epocs" in proc.stdout + proc.stderr


def test_lint_is_clean():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--lint",
            "-s",
            str(ROOT / "Snakefile"),
            "-d",
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Lints for" not in out, out[-3000:]


def test_a_leak_in_the_folds_lock_stops_the_run_naming_the_patient(run, tmp_path):
    """The same patient in two folds (training of one, test of the other) is refused at parse time."""
    lock = (run / "config/folds.lock.tsv").read_text().splitlines()
    key, label, center, fold, scheme = lock[1].split("\t")
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    (leaky / "config.yaml").write_text((run / "config.yaml").read_text())
    (leaky / "config").mkdir()
    other = (int(fold) + 1) % 2
    (leaky / "config/folds.lock.tsv").write_text(
        "\n".join([*lock, f"{key}\t{label}\t{center}\t{other}\t{scheme}"]) + "\n"
    )
    proc = snakemake(leaky, "-n", check=False)
    assert proc.returncode != 0
    assert key in proc.stdout + proc.stderr and "twice" in proc.stdout + proc.stderr


def planned_jobs(output: str) -> list[tuple[str, str]]:
    """Return (rule, wildcards) of every job in a dry run's output."""
    jobs = []
    for block in re.split(r"\n(?=\[.*\d{4}\]\n)", output):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if rule:
            wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            jobs.append((rule.group(1), wildcards.group(1) if wildcards else ""))
    return jobs


def test_new_cases_rerun_only_what_they_change(run, tmp_path):
    """Two new patients: their ingest, the trainings whose training set grew, then evaluation."""
    from gynmri.io.deid import DEMO_KEY
    from gynmri.synth import SynthSpec, plan_cohort, write_patient

    work = tmp_path / "grown"
    shutil.copytree(run, work, symlinks=True)  # keeps mtimes and .snakemake metadata
    config = (work / "config.yaml").read_text()
    # the same cohort, now described by its cases table as a user's cohort would be
    config = re.sub(r"  synthetic:\n(    .*\n)+", "", config)
    (work / "config.yaml").write_text(config)
    env = {"GYNMRI_KEY": DEMO_KEY.decode()}
    proc = snakemake(work, "-n", env=env)
    # only the report, whose provenance footer shows the config, notices the switch
    assert {rule for rule, _ in planned_jobs(proc.stdout)} <= {"report_html", "all"}, proc.stdout[
        -3000:
    ]

    spec = SynthSpec({"myoma": 1, "sarcoma": 1}, centers=1, seed=99)
    cases = work / "data/synthetic/cases.tsv"
    lines = cases.read_text().rstrip("\n").split("\n")
    for i, row in plan_cohort(spec).iterrows():
        new_dir = f"center_new/N{i:04d}"
        write_patient(spec, row, tmp_path / "new/dicom", tmp_path / "new/masks")
        shutil.copytree(
            tmp_path / "new/dicom" / row.patient_dir, work / "data/synthetic/dicom" / new_dir
        )
        shutil.copytree(
            tmp_path / "new/masks" / row.patient_dir, work / "data/synthetic/masks" / new_dir
        )
        lines.append(f"{new_dir}\tcenter_new\t{row.label}")
    cases.write_text("\n".join(lines) + "\n")

    before = (run / "config/folds.lock.tsv").read_text()
    proc = snakemake(work, "-n", env=env)
    jobs = planned_jobs(proc.stdout)
    lock = pd.read_csv(work / "config/folds.lock.tsv", sep="\t")
    assert (work / "config/folds.lock.tsv").read_text().startswith(before.split("\n")[0])
    old = pd.read_csv(run / "config/folds.lock.tsv", sep="\t").set_index("patient")["fold"]
    assert (lock.set_index("patient")["fold"][old.index] == old).all()  # nobody moved
    new_folds = set(lock[~lock["patient"].isin(old.index)]["fold"])
    assert len(lock) == len(old) + 2

    by_rule: dict[str, list[str]] = {}
    for rule, wildcards in jobs:
        by_rule.setdefault(rule, []).append(wildcards)
    assert len(by_rule.pop("ingest")) == 2  # only the new patients
    assert len(by_rule.pop("ingest_wide")) == 2
    expected_train = {
        f"sequence={s}, fold={f}" for s in ("T2axi", "DWI") for f in (0, 1) if new_folds - {f}
    }  # a training set grows when a new patient is in another fold
    assert set(by_rule.pop("train", [])) == expected_train
    # the same training sets: the guide's localiser (T2axi) retrains, DWI's threshold with it
    localisers = {w for w in expected_train if w.startswith("sequence=T2axi")}
    assert set(by_rule.pop("train_detector", [])) == localisers
    assert set(by_rule.pop("carry_detector", [])) == expected_train - localisers
    expected_predict = {
        f"sequence={s}, fold={f}"
        for s in ("T2axi", "DWI")
        for f in (0, 1)
        if f in new_folds or new_folds - {f}
    }
    assert set(by_rule.pop("predict")) == expected_predict
    assert set(by_rule.pop("predict_auto")) == expected_predict
    # the fold listings (one input per network job) that the new patients join, and only those
    expected_listings = {
        f"kind={kind}, fold={f}, part={part}"
        for kind in ("slices", "wide")
        for f in (0, 1)
        for part in ("train", "test")
        if (part == "test" and f in new_folds) or (part == "train" and new_folds - {f})
    }
    assert set(by_rule.pop("fold_listing")) == expected_listings
    downstream = {
        "folds",
        "qc_summary",
        "evaluate",
        "readers",
        "roc_figure",
        "ensembles_figure",
        "confusion_figure",
        "training_figure",
        "report_html",
        "all",
        "evaluate_selection",
        "manifest",
        "gradcam_figure",
        "localiser_figure",
        "clinical",
    }
    assert set(by_rule) <= downstream
    assert "synth_patient" not in by_rule


def chromium_flags(tmp_path: Path) -> tuple[str, list[str]]:
    """Return the headless browser and its flags (a fresh profile under ``tmp_path``)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, (
        "chromium is needed for this test: apt-get install chromium (.ci/run installs it)"
    )
    return browser, [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]


def rendered_dom(page: Path, tmp_path: Path) -> str:
    """Return the DOM of ``page`` as headless Chromium builds it (what a user's browser shows)."""
    browser, flags = chromium_flags(tmp_path)
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


def test_report_renders_in_headless_chromium(run, tmp_path):
    """Open the report as a user would: a real browser loads it, tables and images are in the DOM."""
    page = run / "results/report/index.html"
    dom = rendered_dom(page, tmp_path)
    for heading in (
        "Cohort",
        "Per sequence",
        "Ensembles over sequences",
        "ROC curves",
        "Reader study",
        "Where the models look",
        "Calibration",
        "Decision curves",
        "Subgroups",
        "Reporting checklist (TRIPOD+AI, CLAIM)",
    ):
        assert f"<h2>{heading}" in dom
    assert "<h3>Best ensemble of each size" in dom
    assert "<h3>Explanations measured against the tumour" in dom
    assert 'href="../metrics/ensembles.tsv"' in dom  # the full table, beside the report
    assert dom.count("<table") >= 10 and dom.count("<img") >= 8
    assert "filled by" in dom and "to be written by the study's authors" in dom
    browser, flags = chromium_flags(tmp_path)
    url = page.as_uri()
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, "--window-size=1200,2400", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 50_000  # a rendered page with figures, not a blank one
