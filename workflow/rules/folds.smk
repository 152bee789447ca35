# Patient-level folds (stratified k-fold, or one per hospital). The assignment itself is made at
# parse time from the lock file (config folds/lock, see common.smk); these rules publish it.


rule folds:
    output:
        folds="results/splits/folds.tsv",
    log:
        "results/logs/folds.log",
    conda:
        "../envs/report.yaml"
    params:
        folds=FOLD_TABLE.to_dict("records"),
    script:
        "../scripts/folds.py"


if SCHEME == "both":

    rule external_folds:
        # The leave-one-centre-out folds trained beside the k-fold ones (folds/scheme both).
        output:
            folds="results/splits/external_folds.tsv",
        log:
            "results/logs/external_folds.log",
        conda:
            "../envs/report.yaml"
        params:
            folds=EXTERNAL_TABLE.to_dict("records"),
        script:
            "../scripts/folds.py"
