# Figures (each its own rule) and the self-contained HTML report.


rule roc_figure:
    input:
        roc="results/metrics/roc.tsv",
        sequences="results/metrics/sequences.tsv",
        ensembles="results/metrics/ensembles.tsv",
    output:
        png=report(
            "results/figures/roc.png",
            caption="../report/roc.rst",
            category="Figures",
        ),
    log:
        "results/logs/figures/roc.log",
    conda:
        "../envs/report.yaml"
    params:
        sequences=SEQUENCES,
    script:
        "../scripts/roc_figure.py"


rule ensembles_figure:
    input:
        ensembles="results/metrics/ensembles.tsv",
    output:
        png=report(
            "results/figures/ensembles.png",
            caption="../report/ensembles_figure.rst",
            category="Figures",
        ),
    log:
        "results/logs/figures/ensembles.log",
    conda:
        "../envs/report.yaml"
    params:
        rank_by=config["evaluate"]["rank_by"],
    script:
        "../scripts/ensembles_figure.py"


rule confusion_figure:
    input:
        unpack(lambda wildcards: fusion_outputs(["confusion"])),
        confusion="results/metrics/confusion.tsv",
        ensembles="results/metrics/ensembles.tsv",
    output:
        png=report(
            "results/figures/confusion.png",
            caption="../report/confusion.rst",
            category="Figures",
        ),
    log:
        "results/logs/figures/confusion.log",
    conda:
        "../envs/report.yaml"
    params:
        classes=config["task"]["classes"],
        sequences=SEQUENCES,
    script:
        "../scripts/confusion_figure.py"


rule training_figure:
    input:
        histories=expand(
            "results/models/{sequence}/fold{fold}/history.tsv",
            sequence=SEQUENCES,
            fold=FOLDS,
        ),
    output:
        png=report(
            "results/figures/training.png",
            caption="../report/training.rst",
            category="Figures",
        ),
    log:
        "results/logs/figures/training.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/training_figure.py"


rule report_html:
    input:
        unpack(lambda wildcards: reader_outputs()),
        unpack(lambda wildcards: fusion_outputs()),
        unpack(lambda wildcards: clinical_outputs()),
        cohort="results/qc/cohort.tsv",
        files="results/qc/files.tsv",
        sequences="results/metrics/sequences.tsv",
        ensembles="results/metrics/ensembles.tsv",
        classes="results/metrics/classes.tsv",
        summaries="results/metrics/summaries.tsv",
        selection_slices="results/metrics/selection_slices.tsv",
        selection_patients="results/metrics/selection_patients.tsv",
        explanations="results/metrics/explanations.tsv",
        gradcam_png="results/figures/gradcam.png",
        localiser_png="results/figures/localiser.png",
        roc_png="results/figures/roc.png",
        ensembles_png="results/figures/ensembles.png",
        training_png="results/figures/training.png",
        confusion_png="results/figures/confusion.png",
    output:
        html=report(
            "results/report/index.html",
            caption="../report/index.rst",
            category="Report",
        ),
        model_card="results/report/model_card.md",
    log:
        "results/logs/report.log",
    conda:
        "../envs/report.yaml"
    params:
        # the report shows the hash of the settings that make the results: all but resources
        config={**config, "train": CLASSIFIER_TRAIN},
    script:
        "../scripts/report_html.py"


# Class-activation maps of every fold's held-out patients by the fold's models (that never saw
# them): scored against the tumour, and a sample drawn. One job: a network job's start and
# compilation cost more than the maps.
rule gradcam_figure:
    input:
        models=expand(
            "results/models/{sequence}/fold{fold}/model",
            sequence=SEQUENCES,
            fold=FOLDS,
        ),
        wide=expand(listing_of("wide", "test"), fold=FOLDS),
    output:
        png=report(
            "results/figures/gradcam.png",
            caption="../report/gradcam.rst",
            category="Figures",
        ),
        explanations=report(
            "results/metrics/explanations.tsv",
            caption="../report/explanations.rst",
            category="Metrics",
        ),
    log:
        "results/logs/figures/gradcam.log",
    conda:
        "../envs/train.yaml"
    threads: config["train"]["threads"]
    resources:
        **network_resources(2000, 30),
    params:
        sequences=SEQUENCES,
        folds=FOLDS,
        classes=config["task"]["classes"],
        size=config["harmonize"]["size"],
    script:
        "../scripts/gradcam_figure.py"
