# MobileNetV2 per (sequence, fold): trained on the other folds' patients; then the held-out
# fold is predicted by a separate job, so a new test patient only costs a prediction.


rule fold_listing:
    # One file per fold listing its patients' tables: the training and prediction jobs depend
    # on it rather than on hundreds of tables each, which keeps planning fast at study scale; a
    # new or re-ingested table rewrites the listings it is in, and so reruns those jobs only.
    input:
        tables=lambda wc: fold_tables(wc.kind, wc.part)(wc),
    output:
        "results/splits/{kind}/fold{fold}_{part}.txt",
    log:
        "results/logs/fold_listing/{kind}_fold{fold}_{part}.log",
    localrule: True
    conda:
        "../envs/ingest.yaml"
    # shell, not run: Snakemake spawns a whole Snakemake process (seconds) for a run block
    shell:
        "printf '%s\\n' {input.tables:q} > {output:q} 2> {log:q}"


rule train:
    input:
        slices=listing_of("slices", "train"),
    output:
        model=directory("results/models/{sequence}/fold{fold}/model"),
        history="results/models/{sequence}/fold{fold}/history.tsv",
    log:
        "results/logs/train/{sequence}_fold{fold}.log",
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
        slices=listing_of("slices", "test"),
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
        tta=TTA,
    script:
        "../scripts/predict.py"
