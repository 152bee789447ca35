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
        evaluate=config["evaluate"],
    script:
        "../scripts/evaluate.py"
