# Slice -> patient scores; metrics per sequence and for every combination of sequences, per class
# (one vs rest, macro, confusion matrix) and for each named binary summary of the task.


rule evaluate:
    input:
        predictions=expand(
            "results/models/{sequence}/fold{fold}/predictions.parquet",
            sequence=SEQUENCES,
            fold=FOLDS,
        ),
        folds="results/splits/folds.tsv",
    output:
        sequences=report(
            "results/metrics/sequences.tsv",
            caption="../report/sequences.rst",
            category="Metrics",
        ),
        ensembles=report(
            "results/metrics/ensembles.tsv",
            caption="../report/ensembles.rst",
            category="Metrics",
        ),
        roc="results/metrics/roc.tsv",
        classes=report(
            "results/metrics/classes.tsv",
            caption="../report/classes.rst",
            category="Metrics",
        ),
        confusion="results/metrics/confusion.tsv",
        summaries=report(
            "results/metrics/summaries.tsv",
            caption="../report/summaries.rst",
            category="Metrics",
        ),
    log:
        "results/logs/evaluate.log",
    conda:
        "../envs/report.yaml"
    params:
        task=config["task"],
        sequences=SEQUENCES,
        evaluate=EVALUATION,
    script:
        "../scripts/evaluate.py"


# Calibration, decision curves, subgroups and (folds/scheme centre or both) external validation
# of the same out-of-fold patient scores (gynmri.evaluation.clinical).
rule clinical:
    input:
        unpack(external_inputs),
        unpack(lambda wildcards: fusion_outputs(["scores"])),
        predictions=expand(
            "results/models/{sequence}/fold{fold}/predictions.parquet",
            sequence=SEQUENCES,
            fold=FOLDS,
        ),
        folds="results/splits/folds.tsv",
        ensembles="results/metrics/ensembles.tsv",
        series="results/qc/series.tsv",
    output:
        **clinical_outputs(captioned=True),
    log:
        "results/logs/clinical.log",
    conda:
        "../envs/report.yaml"
    params:
        task=config["task"],
        sequences=SEQUENCES,
        evaluate=config["evaluate"],
        scheme=SCHEME,
        # pseudonymous key, hospital and the cases-table columns named in evaluate/subgroups
        patients=CASES[["patient", "center", *subgroup_columns(config)]].to_dict("records"),
    script:
        "../scripts/clinical.py"
