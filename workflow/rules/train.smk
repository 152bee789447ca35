# MobileNetV2 per (sequence, fold): trained on the other folds' patients; then the held-out
# fold is predicted by a separate job, so a new test patient only costs a prediction.


rule train:
    input:
        slices=fold_slices("train"),
    output:
        model=directory("results/models/{sequence}/fold{fold}/model"),
        history="results/models/{sequence}/fold{fold}/history.tsv",
    params:
        patients=lambda wc: fold_patients(wc, "train"),
        classes=config["task"]["classes"],
        model=config["model"],
        train=config["train"],
    threads: config["train"]["threads"]
    resources:
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime_minutes"],
        gpu=config["train"]["gpus"],
    log:
        "results/logs/train/{sequence}_fold{fold}.log",
    benchmark:
        "results/benchmarks/train/{sequence}_fold{fold}.tsv"
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/train.py"


rule predict:
    input:
        model="results/models/{sequence}/fold{fold}/model",
        slices=fold_slices("test"),
    output:
        predictions="results/models/{sequence}/fold{fold}/predictions.parquet",
    params:
        patients=lambda wc: fold_patients(wc, "test"),
        classes=config["task"]["classes"],
    threads: config["train"]["threads"]
    resources:
        mem_mb=2000,
        runtime=30,
    log:
        "results/logs/predict/{sequence}_fold{fold}.log",
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/predict.py"
