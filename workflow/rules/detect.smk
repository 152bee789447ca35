# Tumour-slice detector per (sequence, fold), trained on the wide slices of the fold's training
# patients; the held-out fold then gets its slices selected automatically and classified, so the
# report can set automatic beside annotated slice selection (and gynmri predict can use it).


rule train_detector:
    input:
        wide=fold_wide("train"),
    output:
        model=directory("results/detectors/{sequence}/fold{fold}/model"),
        history="results/detectors/{sequence}/fold{fold}/history.tsv",
    params:
        patients=lambda wc: fold_patients(wc, "train"),
        size=config["harmonize"]["size"],
        model=config["model"],
        train=config["train"],
        detect=config["detect"],
    threads: config["train"]["threads"]
    resources:
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime_minutes"],
        gpu=config["train"]["gpus"],
    log:
        "results/logs/train_detector/{sequence}_fold{fold}.log",
    benchmark:
        "results/benchmarks/train_detector/{sequence}_fold{fold}.tsv"
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/train_detector.py"


rule predict_auto:
    input:
        detector="results/detectors/{sequence}/fold{fold}/model",
        model="results/models/{sequence}/fold{fold}/model",
        wide=fold_wide("test"),
    output:
        predictions="results/models/{sequence}/fold{fold}/auto_predictions.parquet",
        selection="results/detectors/{sequence}/fold{fold}/selection.parquet",
    params:
        patients=lambda wc: fold_patients(wc, "test"),
        classes=config["task"]["classes"],
        detect=config["detect"],
    threads: config["train"]["threads"]
    resources:
        mem_mb=2000,
        runtime=30,
    log:
        "results/logs/predict_auto/{sequence}_fold{fold}.log",
    conda:
        "../../envs/train.yaml"
    script:
        "../scripts/predict_auto.py"


rule evaluate_selection:
    input:
        auto=expand(
            "results/models/{sequence}/fold{fold}/auto_predictions.parquet",
            sequence=SEQUENCES,
            fold=FOLDS,
        ),
        annotated=expand(
            "results/models/{sequence}/fold{fold}/predictions.parquet",
            sequence=SEQUENCES,
            fold=FOLDS,
        ),
        selection=expand(
            "results/detectors/{sequence}/fold{fold}/selection.parquet",
            sequence=SEQUENCES,
            fold=FOLDS,
        ),
        ensembles="results/metrics/ensembles.tsv",
    output:
        slices=report(
            "results/metrics/selection_slices.tsv",
            caption="../report/selection_slices.rst",
            category="Automatic slice selection",
        ),
        patients=report(
            "results/metrics/selection_patients.tsv",
            caption="../report/selection_patients.rst",
            category="Automatic slice selection",
        ),
    params:
        task=config["task"],
        sequences=SEQUENCES,
        evaluate=config["evaluate"],
        size=config["harmonize"]["size"],
        fov_mm=config["harmonize"]["fov_mm"],
    log:
        "results/logs/evaluate_selection.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/evaluate_selection.py"


# What gynmri predict needs to apply the trained models to a new exam: the task, the naming
# rules, the harmonisation and detector settings, the ensemble, and where each model lives.
rule manifest:
    input:
        models=expand("results/models/{sequence}/fold{fold}/model", sequence=SEQUENCES, fold=FOLDS),
        detectors=expand(
            "results/detectors/{sequence}/fold{fold}/model", sequence=SEQUENCES, fold=FOLDS
        ),
        ensembles="results/metrics/ensembles.tsv",
        rules=RULES_FILE,
    output:
        manifest="results/models/manifest.json",
    params:
        task=config["task"],
        sequences=SEQUENCES,
        folds=FOLDS,
        harmonize=config["harmonize"],
        detect=config["detect"],
        evaluate=config["evaluate"],
    log:
        "results/logs/manifest.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/manifest.py"
