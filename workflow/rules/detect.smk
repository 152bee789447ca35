# Tumour localiser per (sequence, fold): a segmentation network trained on the wide slices and
# masks of the fold's training patients (gynmri.localise); the held-out fold then gets its slices
# selected and cropped automatically and classified, so the report can set automatic beside
# annotated slice selection (and gynmri predict uses it). With detect/guide set, only the guide
# sequence trains a network; the other sequences are read where it finds the tumour, carried by
# patient coordinates (gynmri.localise.carry), each with its own slice-area threshold.


rule train_detector:
    input:
        wide=listing_of("wide", "train"),
    output:
        model=directory("results/detectors/{sequence}/fold{fold}/model"),
        history="results/detectors/{sequence}/fold{fold}/history.tsv",
        maps="results/detectors/{sequence}/fold{fold}/train_maps.npz",
    log:
        "results/logs/train_detector/{sequence}_fold{fold}.log",
    wildcard_constraints:
        sequence=one_of(LOCALISED),
    conda:
        "../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **network_resources(config["train"]["mem_mb"], config["train"]["runtime_minutes"]),
    params:
        patients=lambda wc: fold_patients(wc, "train"),
        size=config["harmonize"]["size"],
        localiser=LOCALISER,
        augment=config["train"]["augment"],
    script:
        "../scripts/train_detector.py"


# No network runs here: the guide's training job saved its training patients' tumour
# probabilities, which are carried onto this sequence's slices to choose its threshold.
rule carry_detector:
    input:
        wide=listing_of("wide", "train"),
        guide=guide_detector,
        guide_maps=lambda wc: f"results/detectors/{GUIDE}/fold{wc.fold}/train_maps.npz",
    output:
        model=directory("results/detectors/{sequence}/fold{fold}/model"),
    log:
        "results/logs/carry_detector/{sequence}_fold{fold}.log",
    wildcard_constraints:
        sequence=one_of(CARRIED),
    conda:
        "../envs/train.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        patients=lambda wc: fold_patients(wc, "train"),
    script:
        "../scripts/carry_detector.py"


rule predict_auto:
    input:
        unpack(lambda wc: {"guide": guide_detector(wc)} if wc.sequence in CARRIED else {}),
        detector="results/detectors/{sequence}/fold{fold}/model",
        model="results/models/{sequence}/fold{fold}/model",
        wide=listing_of("wide", "test"),
    output:
        predictions="results/models/{sequence}/fold{fold}/auto_predictions.parquet",
        perfect="results/models/{sequence}/fold{fold}/perfect_predictions.parquet",
        selection="results/detectors/{sequence}/fold{fold}/selection.parquet",
        masks="results/detectors/{sequence}/fold{fold}/masks.npz",
    log:
        "results/logs/predict_auto/{sequence}_fold{fold}.log",
    conda:
        "../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **network_resources(2000, 30),
    params:
        patients=lambda wc: fold_patients(wc, "test"),
        classes=config["task"]["classes"],
        mm_per_px=config["harmonize"]["fov_mm"] / config["harmonize"]["size"],
        tta=TTA,
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
        perfect=expand(
            "results/models/{sequence}/fold{fold}/perfect_predictions.parquet",
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
    log:
        "results/logs/evaluate_selection.log",
    conda:
        "../envs/report.yaml"
    params:
        task=config["task"],
        sequences=SEQUENCES,
        scoring=SCORING,
        mm_per_px=config["harmonize"]["fov_mm"] / config["harmonize"]["size"],
    script:
        "../scripts/evaluate_selection.py"


# The localiser's tumour against the annotation on a sample of the first fold's held-out patients.
rule localiser_figure:
    input:
        masks=expand("results/detectors/{sequence}/fold0/masks.npz", sequence=SEQUENCES),
        selection=expand("results/detectors/{sequence}/fold0/selection.parquet", sequence=SEQUENCES),
        wide=lambda wc: [f"results/wide/{p}.parquet" for p in SPLITS[0][1]],
    output:
        png=report(
            "results/figures/localiser.png",
            caption="../report/localiser_figure.rst",
            category="Automatic slice selection",
        ),
    log:
        "results/logs/figures/localiser.log",
    conda:
        "../envs/report.yaml"
    params:
        sequences=SEQUENCES,
        classes=config["task"]["classes"],
    script:
        "../scripts/localiser_figure.py"


# What gynmri predict needs to apply the trained models to a new exam: the task, the naming
# rules, the harmonization and detector settings, the ensemble, and where each model lives.
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
    log:
        "results/logs/manifest.log",
    conda:
        "../envs/report.yaml"
    params:
        task=config["task"],
        sequences=SEQUENCES,
        folds=FOLDS,
        harmonize=config["harmonize"],
        detect=config["detect"],
        scoring=SCORING,
        tta=TTA,
    script:
        "../scripts/manifest.py"
