# MobileNetV2 per (sequence, fold): trained on the other folds' patients; then the held-out
# fold is predicted by a separate job, so a new test patient only costs a prediction.


rule train:
    input:
        slices=fold_tables("slices", "train"),
    output:
        model=directory("results/models/{sequence}/fold{fold}/model"),
        history="results/models/{sequence}/fold{fold}/history.tsv",
    log:
        "results/logs/train/{sequence}_fold{fold}.log",
    benchmark:
        "results/benchmarks/train/{sequence}_fold{fold}.tsv"
    conda:
        "../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **network_resources(config["train"]["mem_mb"], config["train"]["runtime_minutes"]),
    params:
        patients=lambda wc: fold_patients(wc, "train"),
        classes=config["task"]["classes"],
        model=config["model"],
        train=CLASSIFIER_TRAIN,
    script:
        "../scripts/train.py"


rule predict:
    input:
        model="results/models/{sequence}/fold{fold}/model",
        slices=fold_tables("slices", "test"),
    output:
        predictions="results/models/{sequence}/fold{fold}/predictions.parquet",
    log:
        "results/logs/predict/{sequence}_fold{fold}.log",
    conda:
        "../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **network_resources(2000, 30),
    params:
        patients=lambda wc: fold_patients(wc, "test"),
        classes=config["task"]["classes"],
    script:
        "../scripts/predict.py"
