# Clinical covariates beside the images: a stacked logistic regression per test fold, fitted on
# the other folds' out-of-fold image scores and covariates. Only when config fusion is set.
if config.get("fusion"):

    rule fusion:
        input:
            predictions=expand(
                "results/models/{sequence}/fold{fold}/predictions.parquet",
                sequence=SEQUENCES,
                fold=FOLDS,
            ),
            folds="results/splits/folds.tsv",
        output:
            metrics=report(
                "results/metrics/fusion.tsv",
                caption="../report/fusion.rst",
                category="Clinical fusion",
            ),
            coefficients="results/metrics/fusion_coefficients.tsv",
            classes="results/metrics/fusion_classes.tsv",
            confusion="results/metrics/fusion_confusion.tsv",
            summaries="results/metrics/fusion_summaries.tsv",
            scores="results/metrics/fusion_scores.tsv",
        log:
            "results/logs/fusion.log",
        conda:
            "../envs/report.yaml"
        params:
            task=config["task"],
            sequences=SEQUENCES,
            evaluate=EVALUATION,
            fusion=config["fusion"],
            # pseudonymous key + the covariate columns only
            covariates=CASES[["patient", *covariate_columns(config)]].to_dict("records"),
        script:
            "../scripts/fusion.py"
