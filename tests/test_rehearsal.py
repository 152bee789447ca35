"""The study's path at 15 sequences, in the test budget: config/rehearsal.yaml is paper.yaml's
structure (checked key by key and by planning both DAGs), and the evaluation and report of 15
sequences (32,767 ensembles) work on study-scale out-of-fold predictions. The rehearsal itself
(489 jobs) runs with ``python bench/study.py``."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pandas as pd

from gynmri.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _bench(name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _keys(tree: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in tree.items():
        out.add(prefix + key)
        if isinstance(value, dict) and key not in ("patients_per_class", "augment", "summaries"):
            out |= _keys(value, f"{prefix}{key}.")
    return out


#: What the rehearsal may change: sizes, the CPU's fast paths, its own cohort and names.
SIZES = {
    "task.name",
    "harmonize.size",
    "model.width",
    "model.depthwise",
    "model.dtype",
    "model.bn_momentum",  # short runs need faster BatchNorm statistics (as the demo)
    "train.batch_size",
    "train.epochs",
    "train.images_per_epoch",
    "train.threads",
    "train.gpus",
    "train.mem_mb",
    "train.runtime_minutes",
    "train.learning_rate",
    "detect.epochs",
    "detect.images_per_epoch",
    "detect.levels",  # the localiser's depth and patches follow the slice size
    "detect.patch",
    "folds.lock",
}


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key != "augment":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def test_rehearsal_is_the_paper_protocol_at_a_small_size():
    paper, rehearsal = (
        load_config(ROOT / "config/paper.yaml"),
        load_config(ROOT / "config/rehearsal.yaml"),
    )
    assert rehearsal["sequences"]["use"] == paper["sequences"]["use"]
    assert len(paper["sequences"]["use"]) == 15 and rehearsal["folds"]["k"] == 6
    assert rehearsal["cohort"]["synthetic"]["sequences"] == paper["sequences"]["use"]
    p, r = (
        _flat({k: v for k, v in paper.items() if k != "cohort"}),
        _flat({k: v for k, v in rehearsal.items() if k != "cohort"}),
    )
    assert set(p) == set(r)
    changed = {k for k in p if p[k] != r[k]}
    assert changed <= SIZES, changed - SIZES
    assert r["evaluate.bootstrap"] == 2000 and r["train.augment"] == p["train.augment"]


def test_rehearsal_plans_every_rule_of_the_study(tmp_path):
    """Both DAGs have the same rules; the rehearsal trains 90 classifiers and 6 localisers (the
    guide's, one per fold), whose tumour the other 14 sequences carry."""
    plan = _bench("plan")
    paper_dir, rehearsal_dir = tmp_path / "paper", tmp_path / "rehearsal"
    paper_dir.mkdir()
    config = plan.make_cohort(paper_dir, {"sarcoma": 12, "myoma": 18})
    _, paper_out, status = plan.dry_run(paper_dir, config)
    assert status == 0, paper_out[-3000:]
    rehearsal_dir.mkdir()
    shutil.copy(ROOT / "config/rehearsal.yaml", rehearsal_dir / "config.yaml")
    _, out, status = plan.dry_run(rehearsal_dir, rehearsal_dir / "config.yaml")
    assert status == 0, out[-3000:]

    def stats(text: str) -> dict[str, int]:
        table = text[text.index("Job stats:") :].split("\n\n")[0]
        return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}

    paper_jobs, rehearsal_jobs = stats(paper_out), stats(out)
    synthetic = {"synth_cases", "synth_patient", "synth_readers", "readers"}
    assert set(rehearsal_jobs) - synthetic == set(paper_jobs) - synthetic
    for rule in ("train", "predict", "predict_auto"):
        assert rehearsal_jobs[rule] == 90 == paper_jobs[rule]
    assert rehearsal_jobs["train_detector"] == 6 == paper_jobs["train_detector"]
    assert rehearsal_jobs["carry_detector"] == 84 == paper_jobs["carry_detector"]
    assert rehearsal_jobs["synth_patient"] == rehearsal_jobs["ingest"] == 30


def test_evaluation_and_report_of_fifteen_sequences(tmp_path):
    """32,767 ensembles from study-scale predictions (fewer resamples): every ensemble has point
    metrics, the shown ones intervals; the report shows the top ensembles, the best of each size
    with missing-sequence counts, the metric-by-size figure and the link to the full table."""
    from gynmri.evaluation.tables import evaluation_tables
    from gynmri.report.figures import plot_ensembles_by_size
    from gynmri.report.sections import ReportInputs, render_report

    cfg = load_config(ROOT / "config/rehearsal.yaml")
    cfg["evaluate"]["bootstrap"] = 50
    sequences = cfg["sequences"]["use"]
    predictions, folds = _bench("evaluate").study_predictions(sequences, slices=4)
    tables = evaluation_tables(predictions, folds, cfg["task"], sequences, cfg["evaluate"])
    ens = tables["ensembles"]
    assert len(ens) == 2**15 - 1 and ens["auc"].notna().all()
    assert (ens["patients_missing_a_sequence"] > 0).any()  # hospitals lack some sequences
    detailed = ens[ens["n_boot"] > 0]
    assert 100 + 0 <= len(detailed) <= 100 + 15 + 15 and detailed["auc_lo"].notna().all()
    assert set(tables["classes"]["scores"]) == set(sequences) | set(detailed["ensemble"])
    png = tmp_path / "ensembles.png"
    plot_ensembles_by_size(ens, "ss_avg", png)
    assert png.stat().st_size > 20_000
    html = render_report(
        ReportInputs(
            config=cfg,
            cohort=pd.DataFrame(
                {"center": "a", "label": ["myoma", "sarcoma"], "patients": [200, 63]}
            ),
            ensembles=ens,
            files=pd.DataFrame({"status": ["used"], "reason": [""]}),
            sequences=tables["sequences"],
            figures={
                "ensembles": str(png),
                **dict.fromkeys(("roc", "confusion", "training"), str(png)),
            },
        )
    )
    section = html[html.index("<h3>Best ensemble of each size") :]
    by_size = section[: section.index("</table>")]
    assert by_size.count("<tr>") == 15  # one row per size (the header row has a style)
    assert "patients_missing_a_sequence" in html and "32767 ensembles" in html
    assert 'href="../metrics/ensembles.tsv"' in html and "Bootstrap intervals are given" in html


def test_the_cut_runs_every_rule_and_meets_the_hospitals_gaps(cut_run):
    """The rehearsal's cut (CI's run of the study's path; tests/test_slurm.py retrains one of its
    models through sbatch): the patients of the hospital without sagittal DWI lack it, and the
    evaluation, the reader study and the report handle them."""
    run = cut_run
    series = pd.read_csv(run / "results/qc/series.tsv", sep="\t")
    used = series[series["sequence"].isin(["T2sag", "DWIsag"])]
    per_patient = used.groupby("patient")["sequence"].nunique()
    assert len(per_patient) == 10 and (per_patient < 2).sum() >= 3  # a centre lacks DWIsag
    ens = pd.read_csv(run / "results/metrics/ensembles.tsv", sep="\t").set_index("ensemble")
    assert len(ens) == 3 and ens["auc"].notna().all()
    assert ens.loc["T2sag+DWIsag", "patients_missing_a_sequence"] >= 3
    assert ens.loc["DWIsag", "patients_without_any"] >= 3
    assert ens["patients_without_any"].iloc[0] == 0  # the best ensemble reads every patient
    assert (ens["n_boot"] == 2000).all() and ens["auc_lo"].notna().all()
    readers = pd.read_csv(run / "results/metrics/readers.tsv", sep="\t")
    assert len(readers) and readers["model"].iloc[0] == ens.index[0]
    html = (run / "results/report/index.html").read_text()
    section = html[html.index("<h3>Best ensemble of each size") :]
    assert section[: section.index("</table>")].count("<tr>") == 2
    assert "patients_without_any" in html
    # the training jobs traced their step at most once
    # 2 sequences x 2 folds of classifiers; localisers on the guide sequence (T2sag) only
    for rule, program, jobs in (
        ("train", "train_step", 4),
        ("train_detector", "localiser_step", 2),
    ):
        logs = [p.read_text() for p in (run / "results/logs" / rule).glob("*.log")]
        assert len(logs) == jobs
        assert sum(f"{program}: traced and exported" in t for t in logs) <= 1
