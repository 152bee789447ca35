# Slice -> patient scores; metrics per sequence and for every combination of sequences.


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
    params:
        classes=config["task"]["classes"],
        positive=config["task"]["positive"],
        sequences=SEQUENCES,
        evaluate=config["evaluate"],
    log:
        "results/logs/evaluate.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/evaluate.py"
