# MobileNetV2 per (sequence, fold): trained on the other folds, predicts the held-out fold.


rule train:
    input:
        slices=expand("results/slices/{patient}.parquet", patient=PATIENTS),
        folds="results/splits/folds.tsv",
    output:
        model=directory("results/models/{sequence}/fold{fold}/model"),
        predictions="results/models/{sequence}/fold{fold}/predictions.parquet",
        history="results/models/{sequence}/fold{fold}/history.tsv",
    params:
        classes=config["task"]["classes"],
        model=config["model"],
        train=config["train"],
        size=config["harmonize"]["size"],
    threads: config["train"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        "results/logs/train/{sequence}_fold{fold}.log",
    benchmark:
        "results/benchmarks/train/{sequence}_fold{fold}.tsv"
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/train.py"
