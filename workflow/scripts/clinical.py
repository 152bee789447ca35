"""Calibration, decision curves, subgroups and external validation of the patient scores."""

import logging

import pandas as pd

from gynmri.evaluation import clinical
from gynmri.evaluation.scoring import check_out_of_fold
from gynmri.report import clinical_figures as figures
from gynmri.runlog import start

log = start(snakemake.log[0])
# small subgroups often draw resamples of one class: a line for each of dozens of bootstraps is
# noise here (their intervals are in the tables)
logging.getLogger("gynmri.evaluation.stats").setLevel(logging.WARNING)
p, inp, out = snakemake.params, snakemake.input, snakemake.output
ensembles = pd.read_csv(inp.ensembles, sep="\t")


def scores_of(prediction_files, folds_file):
    """Patient scores of every sequence and the best ensemble, with each patient's hospital."""
    predictions = pd.concat([pd.read_parquet(f) for f in prediction_files], ignore_index=True)
    folds = pd.read_csv(folds_file, sep="\t")
    check_out_of_fold(predictions, folds)
    sets = clinical.model_sets(predictions, p.task, p.sequences, p.evaluate, ensembles)
    return clinical.with_center(sets, folds)


sets = scores_of(inp.predictions, inp.folds)
method = p.evaluate["recalibrate"]
summary, curves = clinical.calibration_tables(sets, p.task, method)
summary.to_csv(out.calibration, sep="\t", index=False, float_format="%.4f")
curves.to_csv(out.calibration_curves, sep="\t", index=False, float_format="%.4f")
figures.plot_calibration(curves, out.calibration_png)
best = summary[summary["model"].str.startswith(clinical.BEST)]
for row in best[best["target"] != "all classes"].itertuples():
    log.info(
        "calibration, best ensemble, %s, %s: Brier %.3f, slope %.2f, intercept %.2f",
        row.target,
        row.recalibration,
        row.brier,
        row.slope,
        row.intercept,
    )

fusion = pd.read_csv(inp.fusion_scores, sep="\t") if "fusion_scores" in inp.keys() else None
decision = clinical.decision_table(clinical.decision_inputs(sets, p.task, method, fusion))
decision.to_csv(out.decision, sep="\t", index=False, float_format="%.4f")
figures.plot_decision(decision, out.decision_png)

patients = pd.DataFrame(p.patients).merge(
    clinical.exam_attributes(pd.read_csv(inp.series, sep="\t")), on="patient", how="left"
)
subgroups = pd.concat(
    [
        clinical.subgroup_table(scores, patients, p.evaluate["subgroups"], p.task, p.evaluate, name)
        for name, scores in sets.items()
    ],
    ignore_index=True,
)
subgroups.to_csv(out.subgroups, sep="\t", index=False, float_format="%.4f")
log.info("subgroups: %d rows over %s", len(subgroups), ", ".join(p.evaluate["subgroups"]))

external = None
if "external" in out.keys():
    if p.scheme == "both":
        internal = sets
        held_out = scores_of(inp.external_predictions, inp.external_folds)
    else:  # the run's own folds hold the hospitals out: nothing internal to set beside them
        internal, held_out = {}, sets
    external = clinical.external_table(internal, held_out, p.task, p.evaluate)
    external.to_csv(out.external, sep="\t", index=False, float_format="%.4f")
    pooled = external[
        external["model"].str.startswith(clinical.BEST) & (external["hospital"] == "all")
    ]
    for row in pooled.itertuples():
        log.info(
            "best ensemble, %s validation, hospitals pooled: SS-Avg %.3f, AUC %.3f (n=%d)",
            row.validation,
            row.ss_avg,
            row.auc,
            row.n,
        )
figures.plot_forest(subgroups, external, out.subgroups_png)
